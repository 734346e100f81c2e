"""`hpsearch simulate`: stored curves replayed under another pruner. On a stored study it says which trials
would be pruned and where, what that saves and whether the best survives; on a real sweep run without a
pruner it predicts exactly what a real run with the pruner does (CPU training is deterministic)."""

import json

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch import cli

BUDGET = 800  # training samples of each stored trial


def _store(path, curves, *, pruned=(), name="tiny", axis="samples", batch=16):
    """A stored study as hpsearch writes it: intermediate values on the axis, curves with the point's
    samples (or only steps: a study stored before schema version 3), accuracy standard errors."""
    storage = f"sqlite:///{path.parent}/{name}.db"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for number, curve in enumerate(curves):
        trial = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)})
        points = []
        for at, value in curve:
            key = at if axis == "samples" else at // batch
            trial.report(value, key)
            point = {"step": at // batch, "eval_accuracy": value, "eval_accuracy_se": 0.02, "eval_rows": 400}
            points.append({**point, "samples": at} if axis == "samples" else point)
        trial.set_user_attr("curve", points)
        trial.set_user_attr("training_arguments", {"per_device_train_batch_size": batch})
        if number in pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, curve[-1][1])
    return study


def _simulate(path, capsys, *sets, fmt="json"):
    capsys.readouterr()
    args = ["simulate", str(path), "--format", fmt]
    for s in sets:
        args += ["--set", s]
    status = cli.main(args)
    out = capsys.readouterr()
    return status, (json.loads(out.out) if fmt == "json" and status == 0 else out)


CURVES = [
    [(200, 0.30), (400, 0.40), (800, 0.50)],
    [(200, 0.35), (400, 0.45), (800, 0.55)],
    [(200, 0.10), (400, 0.15), (800, 0.20)],  # clearly worse from the start
    [(200, 0.29), (400, 0.52), (800, 0.60)],  # slow starter, the best
]
MEDIAN = ["pruner.type=median", "pruner.n_startup_trials=2", "pruner.n_warmup_steps=200"]


def test_replay_under_median_prunes_the_bad_trial_and_says_what_it_saves(make_study, capsys):
    path = make_study()
    _store(path, CURVES)
    status, sim = _simulate(path, capsys, *MEDIAN, "pruner.tolerance_se=0")
    assert status == 0
    outcome = {t["number"]: (t["outcome"], t["at"]) for t in sim["trials"]}
    # At 200 the bar is the median of trials 0 and 1 (0.325): trial 2 (0.10) and trial 3 (0.29) fall below.
    assert outcome == {0: ("complete", None), 1: ("complete", None), 2: ("pruned", 200), 3: ("pruned", 200)}
    assert sim["samples_ran"] == 4 * BUDGET and sim["samples_replayed"] == 2 * BUDGET + 2 * 200
    assert sim["saved"] == pytest.approx(1 - 2000 / 3200, abs=1e-4)
    assert sim["best"] == 3 and sim["best_survives"] is False and sim["best_replayed"] == 1
    assert sim["top_k_survivors"] == 2 and sim["axis"] == "samples"
    evidence = next(t for t in sim["trials"] if t["number"] == 3)["evidence"]
    assert evidence["value"] == 0.29 and evidence["bar"] == pytest.approx(0.325) and evidence["uncertainty"] == 0.02


def test_a_tolerance_spares_the_slow_starter_within_the_noise(make_study, capsys):
    path = make_study()
    _store(path, CURVES)
    status, sim = _simulate(path, capsys, *MEDIAN, "pruner.tolerance_se=1")
    assert status == 0
    outcome = {t["number"]: t["outcome"] for t in sim["trials"]}
    # 0.29 is 0.035 below the bar: within 1 x 0.02? No: pruned. 0.10 is far below: pruned.
    assert outcome[2] == "pruned" and outcome[3] == "pruned"
    status, sim = _simulate(path, capsys, *MEDIAN, "pruner.tolerance_se=2")
    outcome = {t["number"]: t["outcome"] for t in sim["trials"]}
    assert outcome == {0: "complete", 1: "complete", 2: "pruned", 3: "complete"}  # 0.035 < 2 x 0.02
    assert sim["best_survives"] is True and sim["top_k_survivors"] == 3


def test_the_table_names_trials_and_the_summary(make_study, capsys):
    path = make_study()
    _store(path, CURVES)
    status, out = _simulate(path, capsys, *MEDIAN, "pruner.tolerance_se=0", fmt="table")
    assert status == 0
    text = out.out
    assert "pruned at 200 (0.1 vs 0.325 ±0.02)" in text
    assert "training: 3,200 samples as run, 2,000 replayed (saves 38%)" in text
    assert "the run's best, trial 3, is pruned; 2 of its top 3 survive; best in the replay: trial 1" in text


def test_a_trial_pruned_in_the_run_ends_where_its_curve_ends(make_study, capsys):
    path = make_study()
    _store(path, [CURVES[0], CURVES[1], [(200, 0.6)]], pruned={2})
    status, sim = _simulate(path, capsys, "pruner.type=none")
    assert status == 0
    last = sim["trials"][-1]
    assert last["ran"] == "pruned" and last["outcome"] == "ended" and last["at"] == 200
    assert sim["saved"] == 0.0


def test_an_older_study_keyed_by_step_replays_with_samples_from_its_batch(make_study, capsys):
    path = make_study()
    _store(path, CURVES, axis="steps", batch=16)
    status, sim = _simulate(path, capsys, "pruner.type=median", "pruner.n_startup_trials=2", "pruner.tolerance_se=0")
    assert status == 0 and sim["axis"] == "steps"
    assert sim["samples_ran"] == 4 * BUDGET  # 50 steps of 16
    assert {t["number"]: t["at"] for t in sim["trials"]}[2] == 200 // 16


def test_bad_input_is_refused_with_exit_2(make_study, capsys):
    path = make_study()
    status, out = _simulate(path, capsys, "pruner.type=median")
    assert status == 2 and out.err.startswith("error: no study database at ")  # nothing stored yet
    _store(path, CURVES)
    status, out = _simulate(path, capsys, "pruner.type=median", "pruner.tolerance_se=-1")
    assert status == 2 and out.err.startswith(f"error: {path}: pruner.tolerance_se: must be >= 0, got -1")
    status, out = _simulate(path, capsys, "pruner.type=median", fmt="table")
    assert status == 0
    assert cli.main(["simulate", str(path), "--top-k", "0"]) == 2


@pytest.mark.slow
def test_simulate_predicts_a_real_run_with_the_pruner(make_study, capsys):
    """The ground truth: a grid run without a pruner, replayed under median, prunes the same trials at the
    same points as the same grid run with that median pruner."""
    rates = [1e-5, 3e-3, 3e-2]
    path = make_study(
        search={"learning_rate": rates, "per_device_train_batch_size": [8, 16]},
        sampler={"type": "grid", "seed": 0},
        objective={"metric": "loss"},
        evaluation={"every": 0.25},
        budget={},
    )
    assert cli.main(["run", str(path), "--quiet", "--set", "name=truth"]) == 0
    median = ["pruner={type: median, n_startup_trials: 2, n_warmup_steps: 40, tolerance_se: 0}"]
    status, sim = _simulate(path, capsys, "name=truth", *median)
    assert status == 0
    assert cli.main(["run", str(path), "--quiet", "--set", median[0]]) == 0
    real = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent}/tiny.db").trials
    predicted = {t["number"]: (t["outcome"] == "pruned", t["at"]) for t in sim["trials"]}
    actual = {
        t.number: (t.state == TrialState.PRUNED, t.last_step if t.state == TrialState.PRUNED else None) for t in real
    }
    assert predicted == actual
    assert any(pruned for pruned, _ in actual.values()), "the median pruner should prune something here"


def test_the_default_hyperband_resolves_its_fractions_from_the_stored_budget(make_study, capsys):
    path = make_study()
    _store(path, CURVES)
    status, sim = _simulate(path, capsys, "pruner={type: hyperband, tolerance_se: 0}")
    assert status == 0
    assert sim["pruner"] == {
        "type": "hyperband",
        "tolerance_se": 0.0,
        "min_resource": 0.0625,
        "max_resource": 1.0,
        "reduction_factor": 3,
    }
    # first rung at 1/16 of 800 samples = 50: every trial is judged at its first evaluation (200)
    pruned = {t["number"]: t["at"] for t in sim["trials"] if t["outcome"] == "pruned"}
    assert pruned and set(pruned.values()) <= {200, 400}


# The reviewer's qmc study: max_steps 12 and a searched batch give budgets of 96, 364 and 192 samples; its
# default hyperband (min_resource 1/16, max_resource 1) pruned trials 4 and 5 at 64 samples.
QMC = [
    [(32, 0.15), (64, 0.15), (96, 0.15)],
    [(32, 0.15), (64, 0.23), (96, 0.41), (128, 0.5), (192, 0.63), (256, 0.69), (320, 0.76), (364, 0.76)],
    [(32, 0.15), (64, 0.15), (96, 0.15), (128, 0.15), (160, 0.15), (192, 0.15)],
    [(32, 0.19), (64, 0.24), (96, 0.25), (128, 0.29), (160, 0.3), (192, 0.32)],
    [(32, 0.15), (64, 0.15)],
    [(32, 0.15), (64, 0.15)],
]
HYPERBAND = ["name=qmc", "pruner={type: hyperband, tolerance_se: 2}"]  # hyperband's brackets hash the name


def test_fractions_resolve_against_the_first_trials_budget_as_the_run_did(make_study, capsys):
    """The run resolves min_resource 1/16 of trial 0's 96 samples (6): the rung trials 4 and 5 were pruned at.
    Against the largest budget (364) the rungs move and the replay would not prune them."""
    path = make_study()
    _store(path, QMC, pruned={4, 5}, name="qmc")
    status, sim = _simulate(path, capsys, *HYPERBAND)
    assert status == 0 and sim["budget"] == 96
    assert {t["number"]: (t["outcome"], t["at"]) for t in sim["trials"] if t["ran"] == "pruned"} == {
        4: ("pruned", 64),
        5: ("pruned", 64),
    }
    status, out = _simulate(path, capsys, *HYPERBAND, fmt="table")
    assert "(min_resource and max_resource given as fractions: of a budget of 96 samples)" in out.out


def test_the_budget_the_run_stored_is_the_one_replayed(make_study, capsys):
    path = make_study()
    study = _store(path, QMC, pruned={4, 5}, name="qmc")
    study.set_user_attr("pruner_budget", {"samples": 364, "trial": 1})  # trial 1 started training first
    status, sim = _simulate(path, capsys, *HYPERBAND)
    assert status == 0 and sim["budget"] == 364


def test_a_study_with_nothing_to_replay_is_refused_with_one_line(make_study, capsys):
    path = make_study()
    storage = {name: f"sqlite:///{path.parent}/{name}.db" for name in ("empty", "failed", "running")}
    optuna.create_study(study_name="empty", storage=storage["empty"], direction="maximize")
    failed = optuna.create_study(study_name="failed", storage=storage["failed"], direction="maximize")
    failed.tell(failed.ask(), state=TrialState.FAIL)
    running = optuna.create_study(study_name="running", storage=storage["running"], direction="maximize")
    running.ask().report(0.3, 75)
    for name in ("empty", "failed", "running"):
        status, out = _simulate(path, capsys, f"name={name}", "pruner.type=median", fmt="table")
        assert status == 2 and out.out == ""
        assert out.err == f"error: study {name!r} has no completed or pruned trial to replay\n"


def test_a_running_or_failed_trial_is_named_as_left_out_and_no_old_schema_is_claimed(make_study, capsys):
    path = make_study()
    study = _store(path, CURVES)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask().report(0.3, 200)  # still running
    status, out = _simulate(path, capsys, *MEDIAN, fmt="table")
    assert status == 0
    assert "trial 4 left out: fail\ntrial 5 left out: running\n" in out.out
    assert "schema version" not in out.out


def test_a_top_k_beyond_the_completed_trials_is_capped_and_said(make_study, capsys):
    path = make_study()
    _store(path, CURVES)
    capsys.readouterr()
    assert cli.main(["simulate", str(path), "--set", "pruner.type=none", "--top-k", "20"]) == 0
    out = capsys.readouterr()
    assert "all 4 of its 4 completed trials survive (top-k 20 asked)" in out.out


@pytest.mark.slow
def test_simulate_predicts_a_hyperband_run_whose_trials_have_different_budgets(make_study, capsys):
    """max_steps with a searched batch: each batch size has its own budget. The run resolves the default
    hyperband's fractions from the budget of its first trial to train and stores it; the replay of the
    ground truth resolves from its first trial's budget, and prunes the same trials at the same points."""
    path = make_study(
        search={"learning_rate": [1e-5, 3e-3, 3e-2], "per_device_train_batch_size": [8, 16, 32]},
        sampler={"type": "grid", "seed": 0},
        objective={"metric": "loss"},
        train={"max_steps": 6, "use_cpu": True},
        evaluation={"every": 16},
        budget={},
    )
    truth = ["--storage", f"sqlite:///{path.parent}/truth.db"]  # the same name: hyperband's brackets hash it
    assert cli.main(["run", str(path), "--quiet", *truth]) == 0
    hyperband = "pruner={type: hyperband, tolerance_se: 0}"
    capsys.readouterr()
    assert cli.main(["simulate", str(path), "--format", "json", "--set", hyperband, *truth]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert cli.main(["run", str(path), "--quiet", "--set", hyperband]) == 0
    real = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent}/tiny.db")
    budgets = [t.user_attrs["budget_samples"] for t in real.trials]
    assert len(set(budgets)) > 1 and real.user_attrs["pruner_budget"] == {"samples": budgets[0], "trial": 0}
    assert sim["budget"] == budgets[0]
    predicted = {t["number"]: (t["outcome"] == "pruned", t["at"]) for t in sim["trials"]}
    actual = {
        t.number: (t.state == TrialState.PRUNED, t.last_step if t.state == TrialState.PRUNED else None)
        for t in real.trials
    }
    assert predicted == actual
