"""objective.at: best, in real sweeps of the tiny BERT: a trial's value is its best evaluation and its step
is recorded, export and `hpsearch train` stop there, model.save_best keeps that evaluation's weights (one
checkpoint, nothing left in the temporary directory); the spec's refusals; `last` as it was.

96 training rows at a batch of 8 are 12 steps an epoch: `num_train_epochs: 4` trains 48 steps, and
`evaluation.every: 0.0625` evaluates every 3 steps (16 evaluations).
"""

import json
import math
import tempfile

import optuna
import pytest
import torch
import yaml

from hpsearch import cli
from hpsearch.training import best_evaluation
from hpsearch.training.best_evaluation import best_point
from tests.conftest import base_study, write_intents

from .test_sweeps import load, run

# `swept` below is module-scoped (a real sweep): under `make test -n 2` the module stays on one worker.
pytestmark = pytest.mark.xdist_group("best_evaluation")

NAN = math.nan
# A learning rate at which this seeded model's accuracy peaks and falls back (seen: 0.81 at step 39 of 48,
# 0.72 at the end); the tests assert on the recorded curve that the peak comes first.
PEAKING = {"learning_rate": [0.005]}
TRAIN = {"num_train_epochs": 4, "use_cpu": True, "per_device_train_batch_size": 8}


@pytest.fixture(scope="module")
def tiny_model(seeded_tiny_model):
    """These tests read learning curves: the seeded tiny BERT, the same in every session."""
    return seeded_tiny_model


def test_best_point_is_the_first_best_finite_evaluation():
    curve = [{"step": s, "v": v} for s, v in ((3, 0.5), (6, NAN), (9, 0.75), (12, 0.75), (15, 0.25))]
    assert best_point(curve, "v", maximize=True)["step"] == 9  # the first of equal bests
    assert best_point(curve, "v", maximize=False)["step"] == 15  # a NaN never wins, in either direction
    assert best_point([{"step": 3, "v": NAN}], "v", maximize=True) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective__at": "peak"}, "objective.at: 'peak' is not allowed; allowed: last, best"),
        (
            {"objective__at": "best", "evaluation__subsample": 8},
            "objective.at: 'best' cannot run with evaluation.subsample (",
        ),
    ],
)
def test_a_bad_objective_at_exits_2_naming_the_file_and_key(make_study, capsys, changes, message):
    path = make_study(**changes)
    assert run(path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: {message}") and len(err.splitlines()) == 1
    assert not (path.parent / "tiny.db").exists() and not (path.parent / "tiny.best").exists()


def test_a_study_stored_without_at_resumes_as_last_and_refuses_best(make_study, capsys):
    path = make_study(budget={"n_trials": 1}, train={"max_steps": 2, "use_cpu": True})
    assert run(path) == 0
    study = load(path)
    stored = study.user_attrs["spec"]
    assert stored["objective"]["at"] == "last"  # the default, stored
    del stored["objective"]["at"]  # as a study stored before the key existed
    study.set_user_attr("spec", stored)
    capsys.readouterr()
    assert run(path, "--set", "objective.at=best", "--n-trials", "2") == 2
    err = capsys.readouterr().err.strip()
    refused = "objective.at: the stored study 'tiny' ran with 'last'; resume with it or use a new study name"
    assert err == f"error: {path}: {refused}"
    assert len(load(path).trials) == 1
    assert run(path, "--n-trials", "2") == 0  # the same study file (at: last, as the old study ran) resumes
    assert len(load(path).trials) == 2


def evaluate(model_dir, data) -> tuple[float, float]:
    """A saved model's accuracy and mean cross-entropy on the eval split, computed here, not by hpsearch."""
    import csv

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(data / "validation.csv") as f:
        rows = list(csv.DictReader(f))
    batch = tokenizer([r["text"] for r in rows], truncation=True, max_length=16, padding=True, return_tensors="pt")
    labels = torch.tensor([model.config.label2id[r["intent"]] for r in rows])
    with torch.no_grad():
        logits = model(**batch).logits
    accuracy = (logits.argmax(-1) == labels).float().mean().item()
    return accuracy, torch.nn.functional.cross_entropy(logits, labels).item()


def first_best(curve: list[dict], key: str = "eval_accuracy") -> dict:
    """The rule, restated: the first curve point with the highest value."""
    values = [p[key] for p in curve]
    return curve[values.index(max(values))]


def peaking_study(folder, tiny_model, **changes) -> dict:
    """One trial of the peaking learning rate, 48 steps, 16 evaluations; `changes` as base_study's."""
    settings = {"search": PEAKING, "train": TRAIN, "evaluation": {"every": 0.0625}, "budget": {"n_trials": 1}}
    return base_study(tiny_model, write_intents(folder / "intents"), **{**settings, **changes})


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_model):
    """A real sweep with at: best and model.save_best, whose trials made temporary folders in a directory
    of its own: (study file, study, that directory). Shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("objective-at")
    scratch = folder / "tmp"
    scratch.mkdir()
    study = peaking_study(
        folder,
        tiny_model,
        objective={"metric": "accuracy", "at": "best"},
        model__save_best=True,
        search={"learning_rate": [*PEAKING["learning_rate"], 0.01]},
        sampler={"type": "grid"},
        budget={},
    )
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))
        patch.setenv("HPSEARCH_CACHE", str(folder / "cache"))
        assert run(path) == 0
    return path, load(path), scratch


@pytest.mark.slow
def test_a_trial_is_scored_at_its_best_evaluation_and_pruners_see_every_one(swept):
    path, study, _ = swept
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        curve, attrs = trial.user_attrs["curve"], trial.user_attrs
        best = first_best(curve)
        assert trial.value == best["eval_accuracy"]
        assert (attrs["best_at_step"], attrs["best_at_samples"]) == (best["step"], best["samples"])
        # pruners judged the curve as it came: every evaluation reported, the falling end too
        assert trial.intermediate_values == {p["samples"]: p["eval_accuracy"] for p in curve}
        assert attrs["steps_trained"] == attrs["max_steps"] == curve[-1]["step"] == 48
    peaked = study.best_trial
    last = peaked.user_attrs["curve"][-1]
    assert peaked.user_attrs["best_at_step"] < last["step"] and peaked.value > last["eval_accuracy"]


@pytest.mark.slow
def test_save_best_keeps_the_best_evaluations_weights_and_no_checkpoint_behind(swept):
    path, study, scratch = swept
    saved = path.parent / "tiny.best" / "model"
    best = study.best_trial
    assert study.user_attrs["best_model_trial"] == best.number and best.user_attrs["saved_model"] == str(saved)
    point = first_best(best.user_attrs["curve"])
    accuracy, loss = evaluate(saved, path.parent / "intents")
    assert accuracy == pytest.approx(point["eval_accuracy"]) and loss == pytest.approx(point["eval_loss"], abs=1e-4)
    assert loss != pytest.approx(best.user_attrs["curve"][-1]["eval_loss"], abs=1e-3)  # not the last weights
    assert list(scratch.glob("hpsearch-*")) == []  # every trial's temporary folder, checkpoint and all, is gone


@pytest.mark.slow
def test_export_and_train_stop_at_the_best_evaluation_on_the_same_schedule(swept, tmp_path):
    path, study, _ = swept
    best = study.best_trial
    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    manifest = yaml.safe_load((tmp_path / "best.manifest.yaml").read_text())
    assert (manifest["stop_at_step"], manifest["stop_at_samples"]) == (
        best.user_attrs["best_at_step"],
        best.user_attrs["best_at_samples"],
    )
    assert manifest["value"] == best.value and manifest["steps_trained"] == 48
    assert yaml.safe_load(out.read_text())["num_train_epochs"] == 4  # the schedule: the trial's arguments as they are
    assert cli.main(["train", str(out), "--out", str(tmp_path / "model")]) == 0
    result = json.loads((tmp_path / "model" / "hpsearch_train.json").read_text())
    assert result["steps"] == manifest["stop_at_step"] and result["trial_value"] == best.value
    assert result["matches"] is True
    # the weights are the trial's at that step, so its loss there is reproduced too (the same learning rates)
    point = first_best(best.user_attrs["curve"])
    assert evaluate(tmp_path / "model", path.parent / "intents")[1] == pytest.approx(point["eval_loss"], abs=1e-4)


@pytest.mark.slow
def test_a_failed_trial_leaves_no_checkpoint_behind(make_study, monkeypatch, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    saved = []

    def fail_after_training(curve, objective, record):
        saved.extend(scratch.glob("hpsearch-*/best-checkpoint/config.json"))
        raise RuntimeError("injected failure after training")

    monkeypatch.setattr(best_evaluation, "objective_value", fail_after_training)
    path = make_study(
        objective={"metric": "accuracy", "at": "best"}, model__save_best=True, budget={"n_trials": 1}, search=PEAKING
    )
    assert run(path) == 1  # its only trial failed
    assert saved  # it had saved its best evaluation's checkpoint
    assert load(path).trials[0].state == optuna.trial.TrialState.FAIL
    assert list(scratch.glob("hpsearch-*")) == [] and not (path.parent / "tiny.best").exists()


@pytest.mark.slow
def test_at_last_is_as_it_was(tiny_model, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(peaking_study(tmp_path, tiny_model), sort_keys=False))  # no objective.at
    assert run(path) == 0
    trial = load(path).trials[0]
    curve = trial.user_attrs["curve"]
    assert trial.value == curve[-1]["eval_accuracy"] < first_best(curve)["eval_accuracy"]  # the peaking curve
    assert not {"best_at_step", "best_at_samples"} & set(trial.user_attrs)
    assert cli.main(["export", str(path), "--out", str(tmp_path / "best.yaml")]) == 0
    manifest = yaml.safe_load((tmp_path / "best.manifest.yaml").read_text())
    assert not {"stop_at_step", "stop_at_samples"} & set(manifest)


@pytest.mark.slow
def test_at_best_with_a_cost_objective(make_study):
    path = make_study(
        objective={"metric": "accuracy", "cost": "device_seconds", "at": "best"},
        train={"max_steps": 8, "use_cpu": True},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    assert trial.values == [first_best(trial.user_attrs["curve"])["eval_accuracy"], trial.user_attrs["device_seconds"]]
    assert trial.user_attrs["best_at_step"] == first_best(trial.user_attrs["curve"])["step"]


def test_train_refuses_a_stop_at_step_the_trial_did_not_train(tmp_path, capsys):
    (tmp_path / "best.yaml").write_text("learning_rate: 0.001\n")
    manifest = {"spec": {}, "study": "tiny", "trial": 0, "metric": "eval_accuracy", "value": 0.5, "labels": []}
    manifest.update(data={}, steps_trained=48, stop_at_step=60)
    (tmp_path / "best.manifest.yaml").write_text(yaml.safe_dump(manifest))
    assert cli.main(["train", str(tmp_path / "best.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    where = tmp_path / "best.manifest.yaml"
    assert err == f"error: {where}: stop_at_step: 60 is not a step of the trial (1 to 48): export again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.manifest.yaml", "best.yaml"]
