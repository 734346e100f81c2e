"""End to end: the real all-MiniLM-L6-v2 fine-tuned on a Banking77 subset from ../shared/data."""

import optuna
import pytest
from transformers import TrainingArguments

from hpsearch import cli

from .conftest import ROOT, SHARED_DATA


@pytest.mark.slow
def test_minilm_on_banking77_subset(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'b77.db'}"
    overrides = [
        f"data.path={SHARED_DATA / 'banking77'}",
        "data.label_column=category",
        "data.max_train_samples=240",
        "data.max_eval_samples=120",
        "data.max_length=32",
        "train.num_train_epochs=1",
        "evaluation.every=0.25",
        "search.learning_rate.low=1e-4",
        "search.learning_rate.high=3e-4",
        "search.optim=[adamw_torch]",
        "search.per_device_train_batch_size=[16]",
        "search.warmup_steps.high=0.1",
        "pruner.type=none",
        "budget.n_trials=2",
    ]
    args = ["--storage", storage, *[x for o in overrides for x in ("--set", o)]]
    assert cli.main(["run", str(ROOT / "studies" / "banking77.yaml"), "--quiet", *args]) == 0
    study = optuna.load_study(study_name="banking77", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in study.trials:
        curve = trial.user_attrs["curve"]
        assert len(curve) == 4 and curve[-1]["step"] == 15  # 240 rows / batch 16, one epoch
        # the pretrained encoder really learns: eval loss falls over the epoch
        assert curve[-1]["eval_loss"] < curve[0]["eval_loss"]
        assert trial.user_attrs["training_arguments_all"]["learning_rate"] == trial.params["learning_rate"]
    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(ROOT / "studies" / "banking77.yaml"), "--out", str(out), *args]) == 0
    import yaml

    TrainingArguments(output_dir=str(tmp_path / "o"), **yaml.safe_load(out.read_text()))
