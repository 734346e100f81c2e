"""search.model (the model as a searched choice) and dropout (model.dropout, search.dropout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from hpsearch import cli
from hpsearch.orchestration import preflight
from hpsearch.spec import SpecError, load_spec
from hpsearch.tasks import causal_lm, classification
from hpsearch.training import models

from .conftest import ROOT


@pytest.fixture(scope="session")
def larger_model(tmp_path_factory, tiny_model) -> Path:
    """tiny_model's larger sibling: the same tokenizer, a wider BERT (48 hidden units, not 32)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("larger-bert")
    config = BertConfig.from_pretrained(tiny_model)
    config.hidden_size, config.intermediate_size = 48, 96
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


def two_models(tmp_path: Path, tiny_model: Path, larger_model: Path) -> list[str]:
    """Both models as folders beside the study file, named relative to it (as a user writes them)."""
    shutil.copytree(tiny_model, tmp_path / "models" / "small")
    shutil.copytree(larger_model, tmp_path / "models" / "large")
    return ["models/small", "models/large"]


def with_model(path: Path, model: dict) -> Path:
    """The study file with this `model` section (make_study's keywords cannot name `model`)."""
    study = yaml.safe_load(path.read_text())
    study["model"] = model
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def choice_study(make_study, names: list[str], model: dict | None = None, **changes) -> Path:
    path = make_study(
        search={"model": names},
        sampler={"type": "grid"},
        budget={},
        evaluation={"every": 0.5},
        train={"max_steps": 4, "use_cpu": True, "per_device_train_batch_size": 16},
        **changes,
    )
    return with_model(path, model or {"save_best": True})


def trials_of(path: Path, name: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db").trials


def hidden_size(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["hidden_size"]


@pytest.mark.slow
def test_a_grid_over_two_models_trains_each_and_train_retrains_the_chosen_one(
    make_study, tiny_model, larger_model, tmp_path, capsys
):
    names = two_models(tmp_path, tiny_model, larger_model)
    path = choice_study(make_study, names, {"save_best": True, "dropout": 0.2})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "hpsearch.cli", "run", str(path), "--quiet"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    trials = trials_of(path)
    assert sorted(t.params["model"] for t in trials) == sorted(names)  # as written: what the report shows
    by_name = {t.params["model"]: t.user_attrs for t in trials}
    for name, attrs in by_name.items():
        assert attrs["model"] == str(tmp_path / name)  # resolved against the study file's folder
        assert "model" not in attrs["training_arguments"]
        assert attrs["dropout"] == dict.fromkeys(
            ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"), 0.2
        )
    assert by_name["models/large"]["trainable_parameters"] > by_name["models/small"]["trainable_parameters"]
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}").user_attrs["spec"]
    assert stored["model"]["choices"] == {n: str(tmp_path / n) for n in names}

    best = max(trials, key=lambda t: t.value)
    best_path = tmp_path / best.params["model"]
    saved = tmp_path / "tiny.best" / "model"  # model.save_best keeps the best whatever its choice
    assert hidden_size(saved) == hidden_size(best_path)
    assert json.loads((saved / "config.json").read_text())["hidden_dropout_prob"] == 0.2

    assert cli.main(["export", str(path)]) == 0
    export = tmp_path / "tiny.best" / "best.yaml"
    manifest = yaml.safe_load((tmp_path / "tiny.best" / "best.manifest.yaml").read_text())
    assert manifest["model"] == str(best_path) and manifest["params"]["model"] == best.params["model"]
    assert "model" not in yaml.safe_load(export.read_text())  # not a TrainingArguments field
    out = tmp_path / "retrained"
    assert cli.main(["train", str(export), "--out", str(out)]) == 0
    result = json.loads((out / "hpsearch_train.json").read_text())
    assert result["base_model"] == str(best_path) and result["matches"] is True
    assert hidden_size(out) == hidden_size(best_path)
    assert json.loads((out / "config.json").read_text())["attention_probs_dropout_prob"] == 0.2
    capsys.readouterr()


def test_a_bad_choice_is_refused_before_anything_is_written(make_study, tiny_model, tmp_path, capsys):
    shutil.copytree(tiny_model, tmp_path / "models" / "small")
    path = choice_study(make_study, ["models/small", "models/missing"])
    assert cli.main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: search.model: choice 'models/missing': no such model folder" in err
    assert not (tmp_path / "tiny.db").exists() and not (tmp_path / "tiny.best").exists()


def test_every_choice_is_checked_against_max_length(make_study, tiny_model, tmp_path):
    shutil.copytree(tiny_model, tmp_path / "models" / "small")
    path = choice_study(make_study, ["models/small"], data__max_length=100)
    with pytest.raises(SpecError) as caught:
        preflight.check(load_spec(path))
    assert caught.value.field == "search.model"
    assert "choice 'models/small': data.max_length 100 exceeds the model's 64 positions" in str(caught.value)


def test_searched_dropout_is_recorded_and_reaches_the_trainers_model(make_study, tiny_model, capsys):
    path = make_study(
        search={"dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.3}},
        sampler={"type": "grid"},
        budget={},
        evaluation={"every": 1.0},
        train={"max_steps": 2, "use_cpu": True},
    )
    with_model(path, {"name_or_path": str(tiny_model), "save_best": True})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    capsys.readouterr()
    trials = trials_of(path)
    assert sorted(t.params["dropout"] for t in trials) == [0.0, 0.3]
    for t in trials:
        assert set(t.user_attrs["dropout"].values()) == {t.params["dropout"]}
        assert "dropout" not in t.user_attrs["training_arguments"]
    best = max(trials, key=lambda t: t.value)
    saved = json.loads((path.parent / "tiny.best" / "model" / "config.json").read_text())
    assert saved["hidden_dropout_prob"] == saved["classifier_dropout"] == best.params["dropout"]


def dropout_probabilities(model) -> set[float]:
    import torch

    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


def test_dropout_overrides_set_every_dropout_of_bert_and_gpt2(tiny_model, tiny_causal_lm):
    from transformers import AutoConfig

    bert_attributes = models.dropout_attributes(AutoConfig.from_pretrained(tiny_model))
    assert bert_attributes == ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
    bert = classification.build_model(str(tiny_model), ("a", "b"), **models.dropout_overrides(bert_attributes, 0.25))
    assert bert.config.hidden_dropout_prob == bert.config.attention_probs_dropout_prob == 0.25
    assert dropout_probabilities(bert) == {0.25}  # the head's too (classifier_dropout)
    assert dropout_probabilities(classification.build_model(str(tiny_model), ("a", "b"))) == {0.1}

    gpt2_attributes = models.dropout_attributes(AutoConfig.from_pretrained(tiny_causal_lm))
    assert {"resid_pdrop", "embd_pdrop", "attn_pdrop"} <= set(gpt2_attributes)
    gpt2 = causal_lm.build_model(str(tiny_causal_lm), **models.dropout_overrides(gpt2_attributes, 0.05))
    assert gpt2.config.resid_pdrop == gpt2.config.embd_pdrop == gpt2.config.attn_pdrop == 0.05
    assert dropout_probabilities(gpt2) == {0.05}
    assert models.dropout_overrides(gpt2_attributes, None) == {}


def test_a_model_without_dropout_settings_is_refused(make_study, tiny_causal_lm, tmp_path, capsys):
    from transformers import MambaConfig

    mamba = tmp_path / "mamba"  # a config without dropout; preflight reads no weights
    shutil.copytree(tiny_causal_lm, mamba)
    (mamba / "model.safetensors").unlink()
    MambaConfig(vocab_size=400, hidden_size=16, num_hidden_layers=1).save_pretrained(mamba)
    path = with_model(make_study(task="causal-lm", objective={}), {"name_or_path": str(mamba), "dropout": 0.1})
    pairs = "prompt_column: text\n  completion_column: intent"
    path.write_text(path.read_text().replace("label_column: intent", pairs))
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: model.dropout: model '{mamba}' (MambaConfig) has none of the dropout settings" in err
    assert err.strip().endswith("remove model.dropout") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny.db").exists()


def test_resume_refuses_choices_that_now_name_other_models(make_study, tiny_model, larger_model, tmp_path):
    from hpsearch.orchestration.controller import check_resume

    names = two_models(tmp_path, tiny_model, larger_model)
    spec = load_spec(choice_study(make_study, names))
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec", spec.to_dict())
    check_resume(spec, study)  # the same models: fine
    moved = spec.to_dict()
    moved["model"]["choices"]["models/small"] = "/elsewhere/small"
    study.set_user_attr("spec", moved)
    with pytest.raises(SpecError) as caught:
        check_resume(spec, study)
    assert caught.value.field == "model.choices"
    study.set_user_attr("spec", spec.to_dict())
    with pytest.raises(SpecError) as caught:  # a fixed dropout changes what every trial means too
        check_resume(load_spec(choice_study(make_study, names, {"dropout": 0.1})), study)
    assert caught.value.field == "model.dropout" and "ran with None" in str(caught.value)


def test_the_report_shows_long_model_names_by_their_end(tmp_path):
    from optuna.distributions import CategoricalDistribution

    from hpsearch.results.report import labels, optuna_figures
    from hpsearch.results.report.collect import collect

    names = ("/very/long/path/to/models/small-model", "organisation/a-much-larger-model-instruct")
    study = optuna.create_study(direction="maximize")
    for i, name in enumerate(names):
        trial = optuna.trial.create_trial(
            value=0.5 + i / 10, params={"model": name}, distributions={"model": CategoricalDistribution(names)}
        )
        study.add_trial(trial)
    data = collect(study)
    assert data.winners[0].param == "model" and data.winners[0].best == names[1]  # the full name, as written
    figure = optuna_figures.get_parallel_plot(data)
    shown = tuple(a.text for a in figure.layout.annotations if a.x == 1)  # the model's axis, after the objective
    assert shown == ("…h/to/models/small-model", "…h-larger-model-instruct")
    assert all(len(t) == labels.TICK for t in shown)
