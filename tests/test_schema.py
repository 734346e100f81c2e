"""The study-file schema: the JSON Schema verb, the generated key reference, and the input it refuses
(each with exit status 2 from the CLI and nothing written)."""

import json
import re
import subprocess
import sys

import pytest

from hpsearch.spec import SpecError, load_spec
from hpsearch.spec.reference import reference

from .conftest import ROOT


def test_committed_key_reference_is_the_generators_output():
    committed = (ROOT / "docs" / "reference" / "study-file.md").read_text()
    assert committed == reference(), "run: python -m hpsearch.spec.reference > docs/reference/study-file.md"


def test_schema_verb_prints_the_json_schema():
    out = subprocess.run([sys.executable, "-m", "hpsearch.cli", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert schema["title"] == "hpsearch study file"
    assert {"name", "task", "data", "search", "sampler", "pruner"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_the_json_schema_carries_the_bounds_the_rules_refuse():
    """An editor reading the schema flags `n_trials: 0` or a negative seed, as validate does."""
    from hpsearch.spec.schema import json_schema

    defs = json_schema()["$defs"]

    def bounds(model: str, key: str) -> dict:
        prop = defs[model]["properties"][key]
        number = next(p for p in prop.get("anyOf", [prop]) if p.get("type") in ("integer", "number"))
        return {k: v for k, v in number.items() if "imum" in k}

    assert bounds("BudgetSpec", "n_trials") == {"minimum": 1}
    assert bounds("BudgetSpec", "timeout") == {"exclusiveMinimum": 0}
    assert bounds("DataSpec", "seed") == {"minimum": 0, "maximum": 2**32 - 1}
    assert bounds("HeartbeatSpec", "max_retries") == {"minimum": 0}
    assert bounds("AugmentSpec", "probability") == {"minimum": 0, "maximum": 1}


def test_range_type_is_inferred_from_its_bounds(make_study):
    spec = load_spec(
        make_study(search__learning_rate={"low": 1e-3, "high": 1e-2}, search__warmup_steps={"low": 0, "high": 10})
    )
    assert spec.search["learning_rate"].kind == "float"
    assert (spec.search["warmup_steps"].kind, spec.search["warmup_steps"].low) == ("int", 0)
    assert load_spec(make_study(search__weight_decay={"low": 0, "high": 0.1})).search["weight_decay"].kind == "float"


def test_eval_prefixed_metric_is_the_metric(make_study):
    spec = load_spec(make_study(objective={"metric": "eval_accuracy"}))
    assert (spec.objective.metric, spec.objective.key, spec.objective.direction) == (
        "accuracy",
        "eval_accuracy",
        "maximize",
    )


REFUSED = [
    ({"train__max_grad_norm": float("nan")}, "train.max_grad_norm", "nan is not allowed; a finite number"),
    ({"search__learning_rate__high": float("inf")}, "search.learning_rate.high", "inf is not allowed"),
    ({"search__weight_decay": [0.0, float("nan")]}, "search.weight_decay.choices", "nan is not allowed"),
    ({"search__per_device_train_batch_size": [0, 8]}, "search.per_device_train_batch_size", "0 is not allowed"),
    ({"train__num_train_epochs": 0}, "train.num_train_epochs", "0 is not allowed"),
    ({"train__max_steps": 0}, "train.max_steps", "0 is not allowed"),
    ({"train__gradient_accumulation_steps": 0}, "train.gradient_accumulation_steps", "0 is not allowed"),
    ({"data__max_length": 0}, "data.max_length", "must be > 0, got 0"),
    ({"budget__n_trials": -1}, "budget.n_trials", "must be > 0, got -1"),
]


@pytest.mark.parametrize(("changes", "field", "text"), REFUSED, ids=[r[1] for r in REFUSED])
def test_refused_values_name_the_key(make_study, changes, field, text):
    path = make_study(**changes)
    with pytest.raises(SpecError, match=f"^{re.escape(f'{path}: {field}: ')}.*{re.escape(text)}") as caught:
        load_spec(path)
    assert caught.value.field == field and "\n" not in str(caught.value)


def test_every_error_of_a_file_is_reported_at_once(make_study):
    path = make_study(data__max_length=0, budget__n_trials="ten", colour="red")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["data.max_length", "budget.n_trials", "colour"]
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\ntask: causal-lm\nname: b\n")
    with pytest.raises(SpecError, match="twice.yaml: name: given twice in one mapping: line 1 and line 3"):
        load_spec(path)


@pytest.mark.parametrize(
    ("content", "text"),
    [(b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 on line 1)"), (b"\x89PNG\r\n\x1a\n\0\0", "is not a text file")],
)
def test_a_file_that_is_not_utf8_text_is_refused(tmp_path, content, text):
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=text.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)


def test_cli_exits_2_and_writes_nothing_for_a_refused_value(make_study, tmp_path):
    path = make_study(train__num_train_epochs=0)
    before = set(tmp_path.iterdir())
    out = subprocess.run([sys.executable, "-m", "hpsearch.cli", "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 2 and "train.num_train_epochs" in out.stderr
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("url", "package"),
    [("mysql+pymysql://u@db/x", "pymysql"), ("postgresql+psycopg2://u:secret@db/x", "psycopg2-binary")],
)
def test_a_storage_url_whose_driver_is_missing_names_the_package(make_study, url, package):
    from hpsearch.results.storage import checked_url

    path = make_study(storage=url)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == "storage"
    assert f"which is not installed: pip install '{package}'" in str(caught.value)
    assert "secret" not in str(caught.value)
    with pytest.raises(SpecError, match=f"--storage: .*pip install '{re.escape(package)}'"):
        checked_url(url, "hpsearch list", "--storage")
    assert checked_url("sqlite:///x.db", "hpsearch list", "--storage") == "sqlite:///x.db"


def test_resume_decides_from_the_stored_schema_version(make_study, capsys):
    """A study stored by a newer schema is refused; so is one stored before evaluations were keyed by
    samples seen (below version 3: its pruner compared optimizer steps), which status still reads."""
    import optuna

    from hpsearch import cli
    from hpsearch.spec.schema import SCHEMA_VERSION, resume_defaults, stored_version

    assert stored_version({}) == 1 and resume_defaults()["augmentation"] == {"ops": [], "probability": 0.0}
    path = make_study(budget={"n_trials": 1})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent}/tiny.db")
    stored = study.user_attrs["spec"]
    assert stored["schema_version"] == SCHEMA_VERSION
    study.set_user_attr("spec", {**stored, "schema_version": SCHEMA_VERSION + 1})
    assert cli.main(["run", str(path), "--n-trials", "2", "--quiet"]) == 2
    assert "schema_version: the stored study 'tiny' was stored by a newer hpsearch" in capsys.readouterr().err
    unversioned = {k: v for k, v in stored.items() if k != "schema_version"}
    unversioned["early_stopping"] = {}  # keys from before they existed: their defaults
    study.set_user_attr("spec", unversioned)
    capsys.readouterr()
    assert cli.main(["run", str(path), "--n-trials", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: schema_version: the stored study 'tiny' was stored by an hpsearch")
    assert "keyed evaluations by optimizer step (schema version 1)" in err and len(study.trials) == 1
    assert cli.main(["status", str(path)]) == 0 and "trial" in capsys.readouterr().out
