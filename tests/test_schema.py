"""The study-file schema: the JSON Schema verb, the generated key reference, and the input it refuses
(each with exit status 2 from the CLI and nothing written)."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading

import pytest

from hpsearch.spec import SETTING_PARAMS, SpecError, load_spec
from hpsearch.spec.load import parse_value
from hpsearch.spec.reference import reference

from .conftest import ROOT
from .schema_check import errors


def test_committed_key_reference_is_the_generators_output():
    committed = (ROOT / "docs" / "reference" / "study-file.md").read_text()
    assert committed == reference(), "run: python -m hpsearch.spec.reference > docs/reference/study-file.md"


def test_schema_verb_prints_the_json_schema():
    out = subprocess.run([sys.executable, "-m", "hpsearch", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert schema["title"] == "hpsearch study file"
    assert {"name", "task", "data", "search", "sampler", "pruner"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_a_reader_that_stops_reading_ends_the_verb_without_an_error_message():
    """`hpsearch schema | head`: the schema (about 100 KB, more than a pipe holds) meets a closed pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.read(1) == "{"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1 and proc.stderr.read() == ""


def test_the_json_schema_carries_the_bounds_the_rules_refuse():
    """An editor reading the schema flags `n_trials: 0` or a negative seed, as validate does."""
    from hpsearch.spec.training_schema import json_schema

    defs = json_schema()["$defs"]

    def bounds(model: str, key: str) -> dict:
        prop = defs[model]["properties"][key]
        number = next(p for p in prop.get("anyOf", [prop]) if p.get("type") in ("integer", "number"))
        return {k: v for k, v in number.items() if "imum" in k}

    assert bounds("BudgetSpec", "n_trials") == bounds("ConfirmSpec", "seeds") == {"minimum": 1, "maximum": 2**31 - 1}
    assert bounds("HeartbeatSpec", "grace_period") == {"minimum": 1, "maximum": int(threading.TIMEOUT_MAX)}
    assert bounds("BudgetSpec", "timeout") == {"exclusiveMinimum": 0}
    assert bounds("DataSpec", "seed") == {"minimum": 0, "maximum": 2**32 - 1}
    assert bounds("HeartbeatSpec", "max_retries") == {"minimum": 0}
    assert bounds("AugmentSpec", "probability") == {"minimum": 0, "maximum": 1}
    train = json_schema()["properties"]["train"]["properties"]  # the TrainingArguments bounds of search.py
    assert {k: v for k, v in train["num_train_epochs"].items() if "imum" in k} == {
        "exclusiveMinimum": 0,
        "maximum": 2**63 - 1,
    }
    assert {k: v for k, v in train["seed"].items() if "imum" in k} == {"minimum": 0, "maximum": 2**32 - 1}
    assert (
        bounds("DataSpec", "max_length")
        == bounds("DataSpec", "max_target_length")
        == {"minimum": 1, "maximum": 2**63 - 1}
    )
    assert {k: v for k, v in train["max_steps"].items() if "imum" in k} == {"maximum": 2**63 - 1}  # or -1
    for batch in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        assert {k: v for k, v in train[batch].items() if "imum" in k} == {"exclusiveMinimum": 0, "maximum": 2**63 - 1}


@pytest.fixture(scope="module")
def schema() -> dict:
    from hpsearch.spec.training_schema import json_schema

    return json_schema()


def _study_files() -> list[tuple[str, dict]]:
    """Every shipped study, and each YAML block of the docs and the README that is a study file or part of one
    (its keys are study-file keys), read as validate reads them."""
    from hpsearch.spec.schema import StudyFile

    found = [(p.name, parse_value(p.read_text())) for p in sorted((ROOT / "studies").glob("*.yaml"))]
    for page in sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)):
            study = parse_value(block)
            if isinstance(study, dict) and set(study) <= set(StudyFile.model_fields):
                found.append((f"{page.relative_to(ROOT)} block {i}", study))
    return found


def test_shipped_and_documented_study_files_follow_the_json_schema(schema):
    """What an editor reads of each is valid: a whole study file against the schema, a part of one against it
    less the keys a whole file requires."""
    part = {k: v for k, v in schema.items() if k != "required"}
    files = _study_files()
    whole = [name for name, study in files if set(schema["required"]) <= set(study)]
    assert len(whole) >= 6 and len(files) >= 15 and "README.md block 0" in whole  # 5 studies and README's
    for name, study in files:
        assert errors(schema if name in whole else part, study) == [], name


FLAGGED = [
    ({"train__learnig_rate": 1e-4}, "train.learnig_rate"),
    ({"search__warmup_ratoi": [0.0, 0.1]}, "search.warmup_ratoi"),
    ({"train__eval_steps": 0.25}, "train.eval_steps"),
    ({"search__output_dir": ["a", "b"]}, "search.output_dir"),
    ({"train__lora_r": 8}, "train.lora_r"),
    ({"train__lr_scheduler_type": "zigzag"}, "train.lr_scheduler_type"),
    ({"train__save_strategy": "sometimes"}, "train.save_strategy"),
    ({"train__num_train_epochs": "three"}, "train.num_train_epochs"),
    ({"train__use_cpu": "yes"}, "train.use_cpu"),
    # Schedulers that step on Trainer's evaluations, which hpsearch schedules itself: listed, and refused only once
    # TrainingArguments was built
    ({"train__lr_scheduler_type": "greedy"}, "train.lr_scheduler_type"),
    ({"search__lr_scheduler_type": ["linear", "reduce_lr_on_plateau"]}, "search.lr_scheduler_type"),
    # A searched Enum's choices, as a list or as a mapping's (validate refused them, the schema did not)
    ({"search__optim": ["adamw_torch", "adamw_turbo"]}, "search.optim"),
    ({"search__save_strategy": {"type": "categorical", "choices": ["no", "often"]}}, "search.save_strategy"),
    # report_to as Trainer takes it: the schema took null, none in a list and any name (validate refused them once
    # TrainingArguments was built)
    ({"train__report_to": None}, "train.report_to"),
    ({"train__report_to": ["none", "tensorboard"]}, "train.report_to"),
    ({"train__report_to": ["tensorboard", "all"]}, "train.report_to"),
    ({"train__report_to": "nowhere"}, "train.report_to"),
    ({"search__report_to": [None, "none"]}, "search.report_to"),
    ({"search__report_to": ["none", "nowhere"]}, "search.report_to"),
    ({"train__report_to": "flyte"}, "train.report_to"),  # no trial runs in a Flyte task
]


@pytest.mark.parametrize(("changes", "field"), FLAGGED, ids=[f[1] for f in FLAGGED])
def test_the_json_schema_flags_the_train_and_search_keys_validate_refuses(schema, make_study, changes, field):
    assert errors(schema, parse_value(make_study().read_text())) == []
    path = make_study(**changes)
    assert [e.split(": ")[0] for e in errors(schema, parse_value(path.read_text()))] == [field]
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field


def test_train_and_search_keys_are_the_installed_training_arguments_validate_takes(schema):
    """train: every field of the installed TrainingArguments but those hpsearch sets or schedules itself;
    search: those and hpsearch's own settings. Each names its help."""
    from transformers import TrainingArguments

    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    train = schema["properties"]["train"]
    search = schema["properties"]["search"]
    assert train["additionalProperties"] is False and search["additionalProperties"] is False
    assert set(train["properties"]) == set(fields) - {"output_dir", "eval_strategy", "eval_steps", "eval_delay"}
    assert set(search["properties"]) == set(train["properties"]) | set(SETTING_PARAMS)
    help_text = " ".join(fields["warmup_steps"].metadata["help"].split())
    assert train["properties"]["warmup_steps"]["description"] == help_text
    assert search["properties"]["warmup_steps"] == {"$ref": "#/$defs/SearchParam", "description": help_text}
    assert "hpsearch's own setting" in search["properties"]["lora_r"]["description"]
    value = schema["$defs"]["SearchParam"]["anyOf"]
    assert {"$ref": "#/$defs/SearchRange"} in value and {"array"} == {v.get("type") for v in value} - {None}


def test_train_values_carry_the_json_type_of_their_annotation(schema):
    from transformers.trainer_utils import SaveStrategy, SchedulerType
    from transformers.training_args import OptimizerNames

    from hpsearch.spec.training_args import check_training_argument

    stepping_on_evaluations = ("reduce_lr_on_plateau", "greedy")

    train = schema["properties"]["train"]["properties"]
    types = {name: train[name].get("type") for name in ("learning_rate", "max_steps", "use_cpu", "tf32", "run_name")}
    assert types == {
        "learning_rate": "number",
        "max_steps": "integer",
        "use_cpu": "boolean",
        "tf32": ["boolean", "null"],
        "run_name": ["string", "null"],
    }
    assert train["label_names"]["items"] == {"type": "string"}  # list[str]
    assert train["optim"]["enum"] == [o.value for o in OptimizerNames]
    assert train["lr_scheduler_type"]["enum"] == [
        s.value for s in SchedulerType if s.value not in stepping_on_evaluations
    ]
    assert train["save_strategy"]["enum"] == [s.value for s in SaveStrategy]
    for name, prop in train.items():  # every value listed is one validate takes
        for value in prop.get("enum", []):
            check_training_argument(name, value, "study.yaml", "train")


REPORT_TO = [None, "none", "all", [], ["none"], ["all"], ["none", "all"], ["none", "wandb"], ["wandb", "all"]]
REPORT_TO += ["nowhere", ["wandb", "nowhere"], "wandb", ["wandb", "tensorboard"], "azure_ml", "flyte", ["flyte"]]


@pytest.mark.parametrize("value", REPORT_TO, ids=map(repr, REPORT_TO))
def test_the_json_schema_takes_the_report_to_values_validate_takes(schema, value):
    """One rule (training_args.report_to_problem) said twice: a value the schema takes is one validate takes."""
    from hpsearch.spec.training_args import report_to_problem

    prop = schema["properties"]["train"]["properties"]["report_to"]
    assert (errors(prop, value, schema) == []) is (report_to_problem(value) is None)
    choice = schema["properties"]["search"]["properties"]["report_to"]
    if not isinstance(value, list):  # a searched choice is one value
        assert (errors(choice, [value], schema) == []) is (report_to_problem(value) is None)


def test_a_type_with_no_json_form_leaves_the_value_unchecked():
    """As validate checks no type it cannot name (a class transformers takes), the schema says none."""
    from hpsearch.spec.training_schema import _json_type

    none = type(None)
    assert _json_type((int, float, none)) == {"type": ["number", "null"]}
    assert _json_type((dict, str, none)) == {"type": ["string", "object", "null"]}
    assert _json_type((re.Pattern, none)) == {} and _json_type(()) == {}


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


def test_the_training_arguments_table_is_read_off_transformers_once_per_version_then_from_the_cache(tmp_path):
    """A verb that reads a study checks its train and search keys without importing transformers (and torch)
    once the table of TrainingArguments is cached for the installed version; a damaged cache is read off again."""
    from importlib import metadata

    from hpsearch.spec.training_args import TABLE_FORMAT

    probe = (
        "import sys; from hpsearch.spec import training_args as t; "
        "print(len(t.training_fields()), len(t.training_choices()['save_strategy']), 'transformers' in sys.modules)"
    )
    env = {**os.environ, "HPSEARCH_CACHE": str(tmp_path)}

    def run() -> tuple[str, str, str]:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
        return tuple(out.stdout.split())

    assert not list(tmp_path.iterdir())
    fields, choices, imported = run()
    assert int(fields) > 100 and int(choices) >= 3 and imported == "True"
    (cached,) = tmp_path.iterdir()
    assert cached.name == f"training-arguments-{TABLE_FORMAT}-transformers-{metadata.version('transformers')}.json"
    assert run() == (fields, choices, "False")  # the same table, from the file alone
    cached.write_text('{"fields": ')  # cut short (a full disk): read off again, and written whole
    assert run() == (fields, choices, "True") and run() == (fields, choices, "False")
