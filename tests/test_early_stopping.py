"""Early stopping per trial and the train/eval loss gap, in real sweeps of the tiny BERT (random weights).

96 training rows at a batch of 8 are 12 steps an epoch: `num_train_epochs: 4` trains 48 steps (384
samples), and `evaluation.every: 0.0625` evaluates every 24 samples = 3 steps (16 evaluations).
"""

import math

import optuna
import pytest

from hpsearch import cli
from hpsearch.training.callbacks import EarlyStopping

from .test_sweeps import load, run


@pytest.fixture(scope="module")
def tiny_model(seeded_tiny_model):
    """These tests read learning curves: the seeded tiny BERT, the same in every session."""
    return seeded_tiny_model


MANY_EVALUATIONS = {"num_train_epochs": 4, "use_cpu": True, "per_device_train_batch_size": 8}
EVERY_3_STEPS = {"every": 0.0625}  # 384 samples trained: an evaluation every 24 (3 steps of 8)
EVERY, MAX_STEPS = 3, 48


def expected_stop(values: list[float], patience: int, threshold: float, maximize: bool) -> int | None:
    """The rule, restated: the index of the evaluation at which training stops, or None."""
    reference, waited = None, 0
    for i, value in enumerate(values):
        if reference is None or (value - reference if maximize else reference - value) > threshold:
            reference, waited = value, 0
            continue
        waited += 1
        if waited == patience:
            return i
    return None


def assert_gap_recorded(trial: optuna.trial.FrozenTrial) -> None:
    curve = trial.user_attrs["curve"]
    for point in curve:
        assert point["train_eval_gap"] == point["eval_loss"] - point["train_loss"], point
    assert trial.user_attrs["train_eval_gap"] == curve[-1]["eval_loss"] - curve[-1]["train_loss"]


@pytest.mark.parametrize("patience", [1, 3])
def test_a_trial_that_cannot_improve_stops_after_patience_plus_one_evaluations(make_study, patience):
    # A learning rate of 1e-12 leaves the weights as they are: the accuracy never changes.
    path = make_study(
        search={"learning_rate": [1e-12]},
        train=MANY_EVALUATIONS,
        evaluation=EVERY_3_STEPS,
        early_stopping={"patience": patience},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    attrs, curve = trial.user_attrs, trial.user_attrs["curve"]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert [p["step"] for p in curve] == [EVERY * (i + 1) for i in range(patience + 1)]
    assert len({p["eval_accuracy"] for p in curve}) == 1  # it could not improve
    stopped = EVERY * (patience + 1)
    assert attrs["early_stopped_at_step"] == stopped == curve[-1]["step"]
    assert attrs["steps_trained"] == stopped < attrs["max_steps"] == MAX_STEPS
    # reported by samples seen: 8 a step
    assert max(trial.intermediate_values) == 8 * stopped == curve[-1]["samples"] and "prune_reason" not in attrs
    # the objective is the evaluation of the weights it stopped with: no extra evaluation after it
    assert trial.value == curve[-1]["eval_accuracy"]
    assert_gap_recorded(trial)


@pytest.mark.slow
def test_a_learning_trial_with_a_large_patience_runs_to_the_end(make_study):
    path = make_study(
        search={"learning_rate": [5e-3]},
        train=MANY_EVALUATIONS,
        evaluation=EVERY_3_STEPS,
        early_stopping={"patience": 100},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    attrs, curve = trial.user_attrs, trial.user_attrs["curve"]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert "early_stopped_at_step" not in attrs
    assert attrs["steps_trained"] == attrs["max_steps"] == MAX_STEPS == curve[-1]["step"]
    assert len(curve) == MAX_STEPS // EVERY
    assert_gap_recorded(trial)
    assert any(p["train_eval_gap"] != 0 for p in curve)


@pytest.mark.slow
def test_on_a_real_learning_curve_the_stop_follows_the_rule(make_study):
    # At 1e-2 and seed 8 the seeded model's eval loss stalls for four evaluations, falls to its lowest at
    # the 11th, then rises and wavers: the stall is within the patience, each fall resets the count, and
    # four evaluations without a better one stop it at the 15th of 16.
    patience, threshold = 4, 0.005
    path = make_study(
        objective={"metric": "loss"},
        search={"learning_rate": [1e-2]},
        train={**MANY_EVALUATIONS, "seed": 8},
        evaluation=EVERY_3_STEPS,
        early_stopping={"patience": patience, "threshold": threshold},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    attrs, curve = trial.user_attrs, trial.user_attrs["curve"]
    losses = [p["eval_loss"] for p in curve]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert len(curve) > patience + 2 and losses[-1] < losses[0] - 0.1  # it learned before it was stopped
    assert "early_stopped_at_step" in attrs and attrs["steps_trained"] < MAX_STEPS
    # stopped at exactly the evaluation the rule names, the last one recorded, and scored there
    assert expected_stop(losses, patience, threshold, maximize=False) == len(curve) - 1
    assert attrs["early_stopped_at_step"] == curve[-1]["step"] == attrs["steps_trained"]
    assert trial.value == curve[-1]["eval_loss"]
    assert_gap_recorded(trial)


@pytest.mark.slow
def test_a_threshold_no_improvement_can_beat_stops_a_learning_trial(make_study):
    # Accuracy cannot rise by more than 1.0, so even a trial that learns never "improves".
    path = make_study(
        search={"learning_rate": [5e-3]},
        train=MANY_EVALUATIONS,
        evaluation=EVERY_3_STEPS,
        early_stopping={"patience": 2, "threshold": 1.0},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["early_stopped_at_step"] == 3 * EVERY == trial.user_attrs["steps_trained"]


@pytest.mark.slow
def test_a_trial_the_pruner_condemns_is_pruned_not_stopped(make_study):
    """At the evaluation where early stopping would stop it, the pruner prunes it: pruned it stays."""
    # eval every 40 samples = 5 steps. With patience 5 a trial that does not learn stops at its
    # sixth evaluation (step 30, 240 samples), where the pruner's warm-up (208 samples) ends. A learning
    # rate of 5e-3 barely moves the eval loss for 20 steps, then improves it: never 5 evaluations without
    # an improvement.
    path = make_study(
        objective={"metric": "loss"},
        search={"learning_rate": {"type": "float", "low": 5e-3, "high": 5.1e-3}},
        pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 208, "tolerance_se": 0},
        evaluation={"every": 40},
        train={**MANY_EVALUATIONS},
        early_stopping={"patience": 5},
        budget={"n_trials": 1},
    )
    tiny_lr = ["--set", "search.learning_rate.low=1e-12", "--set", "search.learning_rate.high=2e-12"]
    # Without a pruner, the trial that does not learn is stopped early at step 30 ...
    assert run(path, *tiny_lr, "--set", "name=alone", "--set", "pruner={type: none}") == 0
    alone = load(path, "alone").trials[0]
    assert alone.state == optuna.trial.TrialState.COMPLETE
    assert alone.user_attrs["early_stopped_at_step"] == 30 == alone.user_attrs["steps_trained"]
    # ... after a learning trial, the median pruner prunes it at that same evaluation instead.
    assert run(path) == 0
    assert run(path, *tiny_lr, "--n-trials", "2") == 0
    learning, pruned = load(path).trials
    assert learning.state == optuna.trial.TrialState.COMPLETE
    assert learning.intermediate_values[240] < pruned.intermediate_values[240]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs["prune_reason"] == "pruner"
    assert pruned.user_attrs["steps_trained"] == 30 and pruned.last_step == 240
    assert "early_stopped_at_step" not in pruned.user_attrs


def test_the_divergence_guard_still_prunes_with_early_stopping_on(make_study):
    path = make_study(
        search={"learning_rate": [1e5], "optim": ["sgd"]},
        evaluation={"every": 0.1},
        train={"num_train_epochs": 3, "use_cpu": True, "max_grad_norm": 0.0},
        early_stopping={"patience": 1},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["prune_reason"].startswith("diverged: train loss ")
    assert "early_stopped_at_step" not in trial.user_attrs


@pytest.mark.slow
def test_early_stopping_is_off_by_default(make_study):
    path = make_study(
        search={"learning_rate": [1e-12]}, train=MANY_EVALUATIONS, evaluation=EVERY_3_STEPS, budget={"n_trials": 1}
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    assert "early_stopped_at_step" not in trial.user_attrs
    assert trial.user_attrs["steps_trained"] == MAX_STEPS and len(trial.user_attrs["curve"]) == MAX_STEPS // EVERY
    assert load(path).user_attrs["spec"]["early_stopping"] == {"patience": None, "threshold": 0.0}


@pytest.mark.parametrize(
    "setting, message",
    [
        ("early_stopping.patience=0", "early_stopping.patience: 0 is not allowed; a whole number >= 1"),
        ("early_stopping.patience=2.5", "early_stopping.patience: must be int, got 2.5"),
        ("early_stopping.threshold=-0.1", "early_stopping.threshold: -0.1 is not allowed; a finite number >= 0"),
        ("early_stopping.wait=3", "early_stopping.wait: unknown key; allowed: patience, threshold"),
        (
            "pruner={type: hyperband, max_resource: auto}",
            "pruner.max_resource: with early_stopping, give hyperband the trials' training samples (or 1.0, all of"
            " them): 'auto' reads it from the first completed trial, which early stopping can cut short",
        ),
    ],
)
def test_validate_refuses_bad_early_stopping_with_exit_2(make_study, capsys, setting, message):
    path = make_study(early_stopping={"patience": 2})
    capsys.readouterr()
    assert cli.main(["validate", str(path), "--set", setting]) == 2
    assert capsys.readouterr().err == f"error: {path}: {message}\n"
    assert not (path.parent / "tiny.db").exists()


class _State:
    def __init__(self, step: int, max_steps: int = 100) -> None:
        self.global_step, self.max_steps = step, max_steps


class _Control:
    should_training_stop = False


def feed(stopper: EarlyStopping, values: list[float], max_steps: int = 100) -> list[bool]:
    """Evaluations at steps 10, 20, ...: whether training was told to stop after each."""
    stops = []
    for i, value in enumerate(values):
        control = _Control()
        stopper.on_evaluate(None, _State(10 * (i + 1), max_steps), control, metrics={"eval_loss": value})
        stops.append(control.should_training_stop)
    return stops


def test_the_rule_direction_threshold_nan_and_the_last_step():
    # minimize: 0.9 improves on 1.0; 0.895 is within the threshold of 0.9, so it does not
    stopper = EarlyStopping("eval_loss", "minimize", patience=2, threshold=0.01)
    assert feed(stopper, [1.0, 0.9, 0.895, 0.85, 0.849, 0.848]) == [False] * 5 + [True]
    assert stopper.stopped_at == 60
    # creeping below the threshold each time still counts once the sum beats it
    creep = EarlyStopping("eval_loss", "minimize", patience=2, threshold=0.01)
    assert feed(creep, [1.0, 0.994, 0.988, 0.982]) == [False] * 4
    # maximize: a lower value never improves; a NaN never improves, and does not become the reference
    up = EarlyStopping("eval_loss", "maximize", patience=2)
    assert feed(up, [0.5, 0.4, math.nan]) == [False, False, True]
    nan_first = EarlyStopping("eval_loss", "maximize", patience=1)
    assert feed(nan_first, [math.nan, 0.5, 0.6, 0.6]) == [False, False, False, True]
    # the evaluation at the last step does not count: training ends there anyway, it is not "early"
    last = EarlyStopping("eval_loss", "minimize", patience=1)
    assert feed(last, [1.0, 1.0], max_steps=20) == [False, False] and last.stopped_at is None
    # a closing evaluation of a step already evaluated is not counted twice
    again = EarlyStopping("eval_loss", "minimize", patience=2)
    control = _Control()
    for value in (1.0, 1.0, 1.0):
        again.on_evaluate(None, _State(10), control, metrics={"eval_loss": value})
    assert again.waited == 0 and not control.should_training_stop


@pytest.mark.slow
def test_retraining_an_early_stopped_trial_stops_where_it_did_and_reproduces_it(make_study, tmp_path):
    """`hpsearch train` of an exported early-stopped trial trains its steps, on the trial's schedule."""
    import json as json_module

    path = make_study(
        budget={"n_trials": 1},
        search={"learning_rate": [1e-12]},
        evaluation={"every": 0.0625},
        train={"num_train_epochs": 4, "use_cpu": True},
        early_stopping={"patience": 1},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    assert cli.main(["train", str(out), "--out", str(tmp_path / "model")]) == 0
    result = json_module.loads((tmp_path / "model" / "hpsearch_train.json").read_text())
    trial = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}").trials[0]
    assert trial.user_attrs["early_stopped_at_step"] < trial.user_attrs["max_steps"]
    assert result["steps"] == trial.user_attrs["steps_trained"]
    assert result["matches"] is True
