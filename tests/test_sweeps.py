"""Real sweeps of a tiny BERT (random weights) through the CLI, recorded in a real SQLite file."""

import json
import sqlite3

import optuna
import pytest
import yaml
from transformers import TrainingArguments

from hpsearch import cli
from hpsearch.tasks import classification


def load(path, name="tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db")


def run(path, *extra) -> int:
    return cli.main(["run", str(path), "--quiet", *extra])


def fail_second_model_load(monkeypatch, error: BaseException) -> None:
    """Inject `error` into the second trial (the second model load of the test)."""
    real = classification.build_model
    calls = []

    def second_fails(path, labels, **overrides):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real(path, labels, **overrides)

    monkeypatch.setattr(classification, "build_model", second_fails)


@pytest.mark.slow
def test_grid_runs_every_point_once_and_stops(make_study):
    path = make_study(
        sampler={"type": "grid"},
        search={"learning_rate": [1e-3, 5e-3], "per_device_train_batch_size": [8, 16]},
        budget={},
    )
    assert run(path) == 0
    study = load(path)
    points = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(points) == 4 and len(set(points)) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert run(path) == 0  # exhausted: a second run adds nothing
    assert len(load(path).trials) == 4


def test_trial_records_what_happened(make_study):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    trial = load(path).trials[0]
    attrs = trial.user_attrs
    assert attrs["training_arguments"]["learning_rate"] == trial.params["learning_rate"]
    assert attrs["training_arguments_all"]["per_device_train_batch_size"] == trial.params["per_device_train_batch_size"]
    assert attrs["seed"] == 42 and attrs["device"] == "cpu"
    assert attrs["wall_time_s"] > 0 and attrs["train_samples_per_second"] > 0 and attrs["peak_memory_mb"] > 0
    curve = attrs["curve"]
    steps = [p["step"] for p in curve]
    assert steps == sorted(steps) and steps[-1] == attrs["steps_trained"] == attrs["max_steps"]
    assert len(curve) >= 4
    for point in curve:
        for key in ("train_loss", "eval_loss", "eval_accuracy", "eval_f1_macro", "epoch"):
            assert isinstance(point[key], float), (key, point)
    assert curve[-1]["epoch"] == 2.0
    assert all(p["train_loss_step"] <= p["step"] for p in curve)
    assert all(p["epoch"] == round(p["epoch"], 4) for p in curve)
    assert attrs["train_seconds"] < attrs["wall_time_s"]
    # the objective is the last evaluation, and each evaluation was reported to Optuna by samples seen
    assert trial.value == curve[-1]["eval_accuracy"]
    assert sorted(trial.intermediate_values) == [p["samples"] for p in curve]
    assert curve[-1]["samples"] == 96 * 2  # the last evaluation stands at the whole budget: 96 rows, 2 epochs
    saved = load(path).user_attrs["spec"]
    assert saved["name"] == "tiny" and saved["search"]["per_device_train_batch_size"] == [8, 16]


@pytest.mark.slow
def test_pruned_trial_stops_training_at_once(make_study):
    # Trial 0 learns fast; trial 1's learning rate is too small to move the loss, so the median
    # pruner stops it at its first evaluation past the warm-up.
    path = make_study(
        objective={"metric": "loss"},
        search={"learning_rate": {"type": "float", "low": 5e-3, "high": 5.1e-3}},
        pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 224, "tolerance_se": 0},
        evaluation={"every": 0.1},
        train={"num_train_epochs": 4, "use_cpu": True, "per_device_train_batch_size": 8},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    tiny_lr = ["--set", "search.learning_rate.low=1e-9", "--set", "search.learning_rate.high=2e-9"]
    assert run(path, *tiny_lr, "--n-trials", "2") == 0
    full, pruned = load(path).trials
    assert full.state == optuna.trial.TrialState.COMPLETE
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs["steps_trained"] < full.user_attrs["steps_trained"]
    # it trained no step past the evaluation that pruned it
    assert pruned.user_attrs["steps_trained"] == pruned.user_attrs["curve"][-1]["step"]
    assert pruned.last_step == pruned.user_attrs["curve"][-1]["samples"]
    # its evidence: the value the median judged, the bar it missed, the loss's standard error
    evidence = pruned.user_attrs["prune_evidence"]
    assert evidence["samples"] == pruned.last_step and evidence["pruned"] is True
    assert evidence["value"] > evidence["bar"]  # a loss: lower wins
    assert evidence["bar"] == pytest.approx(full.intermediate_values[pruned.last_step], abs=1e-6)  # the median of one
    assert evidence["uncertainty"] == pytest.approx(pruned.user_attrs["curve"][-1]["eval_loss_se"], abs=1e-6)
    assert evidence["uncertainty"] > 0
    assert evidence["eval_rows"] == 32 and evidence["tolerance_se"] == 0
    # With a tolerance wider than any gap, the same trial is spared at each proposal and trains to its end.
    wide = ["--set", "name=wide", "--set", "pruner.tolerance_se=1000000"]
    assert run(path, *wide) == 0
    assert run(path, *tiny_lr, *wide, "--n-trials", "2") == 0
    spared = load(path, "wide").trials[-1]
    assert spared.state == optuna.trial.TrialState.COMPLETE and spared.params == pruned.params
    assert spared.user_attrs["spared"] and all(not d["pruned"] for d in spared.user_attrs["spared"])


@pytest.mark.slow
def test_resume_counts_the_total_and_repeats_nothing(make_study):
    path = make_study(budget={"n_trials": 2})
    assert run(path) == 0
    first = [(t.number, t.params, t.datetime_complete) for t in load(path).trials]
    assert run(path, "--n-trials", "3") == 0
    trials = load(path).trials
    assert len(trials) == 3
    assert [(t.number, t.params, t.datetime_complete) for t in trials[:2]] == first
    assert trials[2].params not in [p for _, p, _ in first]  # the resumed sampler did not replay
    assert run(path, "--n-trials", "3") == 0
    assert len(load(path).trials) == 3


@pytest.mark.slow
def test_seeded_tpe_sweeps_repeat(tmp_path, make_study):
    path = make_study(sampler={"type": "tpe", "seed": 5, "n_startup_trials": 2}, budget={"n_trials": 3})
    assert run(path) == 0
    assert run(path, "--set", "name=again") == 0
    assert [t.params for t in load(path).trials] == [t.params for t in load(path, "again").trials]


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_sweep_goes_on(make_study, monkeypatch):
    fail_second_model_load(monkeypatch, RuntimeError("injected failure in trial 1"))
    path = make_study(budget={"n_trials": 3})
    assert run(path) == 0
    states = [t.state for t in load(path).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert load(path).trials[1].user_attrs["error"] == "RuntimeError: injected failure in trial 1"


def test_all_trials_failing_exits_1(make_study, monkeypatch):
    monkeypatch.setattr(classification, "build_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert run(make_study(budget={"n_trials": 2})) == 1


@pytest.mark.slow
def test_interrupted_trial_is_rerun_on_resume(make_study, monkeypatch):
    fail_second_model_load(monkeypatch, KeyboardInterrupt())
    path = make_study(budget={"n_trials": 3})
    assert run(path) == 130
    interrupted = load(path).trials[1]
    assert interrupted.user_attrs["interrupted"] is True
    assert run(path) == 0
    trials = load(path).trials
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == interrupted.params
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3


@pytest.mark.slow
def test_export_loads_back_into_training_arguments(make_study, tmp_path, capsys):
    path = make_study(budget={"n_trials": 2})
    assert run(path) == 0
    best = load(path).best_trial
    out = tmp_path / "best.json"
    assert cli.main(["export", str(path), "--format", "json", "--out", str(out)]) == 0
    arguments = json.loads(out.read_text())
    args = TrainingArguments(output_dir=str(tmp_path / "out"), **arguments)
    assert args.learning_rate == best.params["learning_rate"]
    assert args.per_device_train_batch_size == best.params["per_device_train_batch_size"]
    assert args.num_train_epochs == 2 and args.use_cpu is True
    manifest = json.loads((tmp_path / "best.manifest.json").read_text())
    assert manifest["trial"] == best.number and manifest["value"] == best.value
    assert manifest["metric"] == "eval_accuracy" and manifest["seed"] == 42
    assert manifest["labels"] == ["cancel", "password", "refund", "track"]
    assert manifest["data"]["fingerprint"] == best.user_attrs["data_fingerprint"]
    assert manifest["versions"]["optuna"] == optuna.__version__
    # default: YAML beside the study file
    assert cli.main(["export", str(path)]) == 0
    assert yaml.safe_load((path.parent / "tiny.best" / "best.yaml").read_text()) == arguments


@pytest.mark.slow
def test_status_table_and_json(make_study, capsys):
    path = make_study(budget={"n_trials": 2})
    assert run(path) == 0
    capsys.readouterr()
    assert cli.main(["status", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["#", "state", "accuracy", "duration", "pruned"]
    assert table[1].split()[:2] == ["0", "COMPLETE"] and "learning_rate=" in table[1]
    assert table[-1].startswith("best: trial ") and "accuracy=" in table[-1]
    # The values are labelled with the metric the study was run with, whatever --set (or an edited file) says now
    assert cli.main(["status", str(path), "--set", "objective.metric=loss"]) == 0
    relabelled = capsys.readouterr().out.splitlines()
    assert relabelled[0] == table[0] and relabelled[-1] == table[-1]
    assert cli.main(["status", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_progress_lines_and_quiet_mode(make_study, capsys):
    path = make_study(budget={"n_trials": 1})
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trial   0  start     learning_rate=" in out
    assert "trial   0  step " in out and "accuracy=" in out
    assert "trial   0  COMPLETE  accuracy=" in out
    assert run(path, "--n-trials", "2") == 0
    quiet = capsys.readouterr().out.strip().splitlines()
    assert len(quiet) == 1 and quiet[0].startswith("study tiny: 2 complete")


@pytest.mark.slow
def test_any_sqlalchemy_url_via_storage(make_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    path = make_study(budget={"n_trials": 1})
    assert run(path, "--storage", url) == 0
    assert not (tmp_path / "tiny.db").exists()
    with sqlite3.connect(tmp_path / "elsewhere.db") as db:
        assert db.execute("select count(*) from trials").fetchone() == (1,)


@pytest.mark.slow
def test_save_best_keeps_a_loadable_model(make_study):
    from transformers import AutoModelForSequenceClassification

    path = make_study(model__save_best=True, budget={"n_trials": 3})
    assert run(path) == 0
    study = load(path)
    assert study.user_attrs["best_model_trial"] == study.best_trial.number
    model = AutoModelForSequenceClassification.from_pretrained(path.parent / "tiny.best" / "model")
    assert sorted(model.config.label2id) == ["cancel", "password", "refund", "track"]


@pytest.mark.parametrize("verb", ["status", "export"])
def test_status_and_export_without_a_study(make_study, verb, capsys):
    path = make_study()
    assert cli.main([verb, str(path)]) == 2
    assert "no study database at" in capsys.readouterr().err
    assert not (path.parent / "tiny.db").exists()


def test_resuming_with_an_incompatible_space_is_refused(make_study, capsys):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    capsys.readouterr()
    assert run(path, "--set", "search.per_device_train_batch_size=[4, 8]", "--n-trials", "2") == 2
    err = capsys.readouterr().err.strip()
    assert "search.per_device_train_batch_size: the stored study 'tiny' searched" in err
    assert len(load(path).trials) == 1


@pytest.mark.slow
def test_resuming_with_the_other_direction_is_refused(make_study, capsys):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    capsys.readouterr()
    assert run(path, "--set", "objective.metric=loss", "--n-trials", "2") == 2
    assert "objective.direction: the stored study 'tiny' was created to maximize" in capsys.readouterr().err
    assert len(load(path).trials) == 1


@pytest.mark.slow
def test_grid_budget_above_the_grid_size_runs_each_point_once(make_study):
    path = make_study(sampler={"type": "grid"}, search={"learning_rate": [1e-3, 5e-3]}, budget={"n_trials": 5})
    assert run(path) == 0
    assert run(path) == 0
    assert sorted(t.params["learning_rate"] for t in load(path).trials) == [1e-3, 5e-3]


@pytest.mark.slow
def test_grid_interrupted_point_is_rerun_and_the_grid_completes(make_study, monkeypatch):
    fail_second_model_load(monkeypatch, KeyboardInterrupt())
    path = make_study(sampler={"type": "grid"}, search={"learning_rate": [1e-3, 3e-3, 5e-3]}, budget={})
    assert run(path) == 130
    assert run(path) == 0
    done = [t.params["learning_rate"] for t in load(path).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(done) == [1e-3, 3e-3, 5e-3]
    assert len(load(path).trials) == 4  # three points, one of them tried twice because of Ctrl-C
    assert run(path) == 0 and len(load(path).trials) == 4


@pytest.mark.slow
@pytest.mark.parametrize(
    "pruner",
    [
        {"type": "successive-halving", "min_resource": 16},
        {"type": "hyperband", "min_resource": 16, "max_resource": 192},
    ],
)
def test_halving_pruners_in_a_real_sweep(make_study, pruner):
    path = make_study(pruner=pruner, budget={"n_trials": 4}, objective={"metric": "loss"})
    assert run(path) == 0
    trials = load(path).trials
    assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for t in trials:
        assert t.intermediate_values and t.user_attrs["curve"][-1]["samples"] == max(t.intermediate_values)


@pytest.mark.slow
def test_a_pruner_that_cannot_act_on_a_trial_says_so_once(make_study, capsys):
    # 96 rows x 2 epochs: evaluated at 48, 96 and 144 samples, then at the end (192); cases in test_noise.py
    path = make_study(pruner={"type": "hyperband", "min_resource": 100000}, budget={"n_trials": 2})
    assert run(path) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "the pruner cannot prune" in line]
    assert notes == [
        "trial   0  note: the pruner cannot prune this trial: it judges from 100000 samples on (pruner.min_resource), "
        "and the trial is evaluated last before its end at 144 of its 192 samples (evaluation.every)"
    ]


@pytest.mark.slow
def test_resume_with_changed_fixed_settings_is_refused(make_study, capsys):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    capsys.readouterr()
    assert run(path, "--set", "train.num_train_epochs=3", "--n-trials", "2") == 2
    assert "train.num_train_epochs: the stored study 'tiny' ran with 2.0" in capsys.readouterr().err
    assert run(path, "--set", "model.save_best=true", "--n-trials", "2") == 0


@pytest.mark.slow
def test_a_resumed_run_whose_trials_all_fail_exits_1(make_study, monkeypatch):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    monkeypatch.setattr(classification, "build_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert run(path, "--n-trials", "2") == 1


def test_a_huge_learning_rate_diverges_and_is_pruned_with_its_reason(make_study, capsys):
    path = make_study(
        search={"learning_rate": [1e5], "optim": ["sgd"]},
        evaluation={"every": 0.1},
        train={"num_train_epochs": 3, "use_cpu": True, "max_grad_norm": 0.0},
        budget={"n_trials": 1},
    )
    assert run(path) == 0
    trial = load(path).trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["prune_reason"].startswith("diverged: train loss ")
    assert trial.user_attrs["steps_trained"] < trial.user_attrs["max_steps"]
    capsys.readouterr()
    assert cli.main(["status", str(path)]) == 0
    assert "[diverged: train loss" in capsys.readouterr().out


def test_divergence_guard_can_be_switched_off(make_study):
    path = make_study(
        search={"learning_rate": [1e5], "optim": ["sgd"]},
        evaluation={"every": 0.5},
        train={"num_train_epochs": 1, "use_cpu": True, "max_grad_norm": 0.0},
        divergence={"enabled": False},
        budget={"n_trials": 1},
    )
    assert run(path) in (0, 1)  # completes (with a useless model) or fails on a NaN metric
    trial = load(path).trials[0]
    assert "prune_reason" not in trial.user_attrs
    assert trial.user_attrs["steps_trained"] == trial.user_attrs["max_steps"]


@pytest.mark.slow
def test_device_hours_budget_counts_every_trials_device_seconds(make_study):
    # 0.01 s of compute: the first trial alone spends it, so the sweep stops after it
    path = make_study(budget={"device_hours": 0.01 / 3600})
    assert run(path) == 0
    trials = load(path).trials
    assert len(trials) == 1 and trials[0].user_attrs["device_seconds"] >= 0.01
    assert run(path) == 0 and len(load(path).trials) == 1  # spent: a rerun adds nothing
    assert run(path, "--set", "budget.device_hours=1.0", "--n-trials", "2") == 0
    assert len(load(path).trials) == 2


def oom_above(monkeypatch, largest_batch_that_fits: int) -> None:
    """Inject CUDA's out-of-memory error into any trainer whose micro-batch is above the limit."""
    import torch

    from hpsearch.training import attempt  # the module that builds a pass's Trainer

    real = attempt.make_trainer

    def make(task, task_data, tokenizer, model_path, args, callbacks=(), **kw):
        trainer = real(task, task_data, tokenizer, model_path, args, callbacks, **kw)
        if args.per_device_train_batch_size > largest_batch_that_fits:

            def train(*a, **k):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

            trainer.train = train
        return trainer

    monkeypatch.setattr(attempt, "make_trainer", make)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(make_study, monkeypatch):
    oom_above(monkeypatch, 4)
    path = make_study(search={"learning_rate": [5e-3], "per_device_train_batch_size": [16]}, budget={"n_trials": 1})
    assert run(path) == 0
    trial = load(path).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.params["per_device_train_batch_size"] == 16
    assert trial.user_attrs["oom_retries"] == [
        {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1, "per_device_eval_batch_size": 64},
        {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "per_device_eval_batch_size": 32},
    ]
    args = trial.user_attrs["training_arguments"]
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (4, 4)
    assert args["per_device_eval_batch_size"] == 16  # evaluation runs inside train() too: it halves as well
    # the same optimizer steps as a batch of 16: 96 rows, 2 epochs -> 12 steps
    assert trial.user_attrs["steps_trained"] == 12


def test_out_of_memory_at_a_batch_of_one_fails_with_reason_oom_and_the_sweep_goes_on(make_study, monkeypatch):
    oom_above(monkeypatch, 0)
    path = make_study(budget={"n_trials": 2})
    assert run(path) == 1  # every trial of this run failed
    trials = load(path).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
    for t in trials:
        assert t.user_attrs["fail_reason"] == "oom"
        assert t.user_attrs["error"].startswith("oom: out of memory at per_device_train_batch_size=1")
        assert t.user_attrs["oom_retries"][-1]["per_device_train_batch_size"] == 1


@pytest.mark.slow
def test_memory_comes_back_to_its_baseline_after_each_trial(make_study):
    """Each trial records the memory held before it and after it is cleaned up; nothing accumulates."""
    path = make_study(budget={"n_trials": 6}, search={"learning_rate": [1e-3, 3e-3]})
    assert run(path) == 0
    trials = load(path).trials
    after = [t.user_attrs["memory_after_mb"] for t in trials]
    for previous, t in zip(trials, trials[1:], strict=False):
        assert t.user_attrs["memory_baseline_mb"] >= 0.9 * previous.user_attrs["memory_after_mb"]
    # the first trial warms caches up; after it a leaked model and optimizer (~12 MB each) would show
    assert max(after[1:]) - after[1] < 8, after


def test_a_sweep_keeps_what_was_loaded_before_it_out_of_the_collectors_walk(make_study, monkeypatch):
    """Trainer collects garbage at the start of every train() and hpsearch after every trial: with
    transformers loaded a full collection walks ~480,000 objects (0.25 s each) unless what was loaded before
    the sweep is frozen for it (memory.sweep_heap); the caller's collector gets them back afterwards."""
    import gc

    frozen = []
    real = classification.build_model

    def build_model(*args, **kwargs):
        frozen.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "build_model", build_model)
    path = make_study(budget={"n_trials": 2}, train={"max_steps": 2, "use_cpu": True})
    assert gc.get_freeze_count() == 0
    assert run(path) == 0
    assert len(frozen) == 2 and min(frozen) > 100_000, frozen  # torch and transformers alone are more
    assert gc.get_freeze_count() == 0
    assert [t.state.name for t in load(path).trials] == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_an_interrupted_trial_without_its_re_run_gets_one_when_the_study_is_run_again(make_study):
    """The interrupted process queues the re-run itself; `run` catches up a study where that did not happen."""
    path = make_study(budget={"n_trials": 2})
    assert run(path, "--n-trials", "1") == 0
    study = load(path)
    lost = study.ask()
    lost.suggest_float("learning_rate", 1e-3, 1e-2, log=True)
    lost.suggest_categorical("per_device_train_batch_size", [8, 16])
    lost.set_user_attr("interrupted", True)
    study.tell(lost, state=optuna.trial.TrialState.FAIL)
    assert run(path) == 0
    trials = load(path).trials
    reruns = [t for t in trials if t.user_attrs.get("retry_of") == lost.number]
    assert len(reruns) == 1 and reruns[0].params == lost.params and reruns[0].state.name == "COMPLETE"
    assert [t.state.name for t in trials].count("COMPLETE") == 2


@pytest.mark.parametrize(
    "cuda, bf16_supported, train, expected",
    [
        (False, False, {}, {}),
        (True, True, {}, {"bf16": True}),
        (True, False, {}, {"fp16": True}),
        (True, True, {"use_cpu": True}, {}),
        (True, True, {"bf16": False}, {"bf16": False}),  # the study's choice stands
    ],
)
def test_mixed_precision_follows_the_device_unless_the_study_chooses(
    make_study, monkeypatch, cuda, bf16_supported, train, expected
):
    import torch

    from hpsearch.spec import load_spec
    from hpsearch.training.trainer import training_arguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    spec = load_spec(make_study(train={"num_train_epochs": 1, **train}))
    args = training_arguments(spec, {"learning_rate": 1e-3})
    assert {k: args[k] for k in ("bf16", "fp16") if k in args} == expected


NO_BF16_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni\n"


@pytest.mark.parametrize(
    "cpuinfo, has",
    [
        (NO_BF16_CPU, False),  # AVX-512 without its BF16 extension: still no bf16 arithmetic
        (NO_BF16_CPU.replace("avx512_vnni", "avx512_vnni avx512_bf16 amx_tile amx_bf16"), True),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Arm, e.g. Graviton3
        ("processor\t: 0\nFeatures\t: fp asimd crc32\n", False),
        ("processor\t: 0\n", None),  # no flags to read: nothing is said
        (None, None),  # no /proc/cpuinfo (macOS)
    ],
)
def test_cpu_bf16_arithmetic_is_read_from_the_kernels_flags(tmp_path, monkeypatch, cpuinfo, has):
    from hpsearch.training import trainer

    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(trainer, "CPUINFO", path)
    assert trainer.cpu_has_bf16() is has


@pytest.mark.parametrize(
    "changes, gpu, cpuinfo, noted",
    [
        ({"train__bf16": True}, False, NO_BF16_CPU, True),
        ({"train__bf16": True, "train__use_cpu": False}, True, NO_BF16_CPU, False),  # the GPU trains
        ({"train__bf16": True}, True, NO_BF16_CPU, True),  # use_cpu: the CPU trains though a GPU is there
        ({"train__bf16": True}, False, NO_BF16_CPU.replace("avx2", "avx2 amx_bf16"), False),
        ({"search__bf16": [False, True]}, False, NO_BF16_CPU, True),
        ({"search__bf16": [False]}, False, NO_BF16_CPU, False),
        ({}, False, NO_BF16_CPU, False),
    ],
)
def test_bf16_on_a_cpu_without_bf16_arithmetic_is_noted(
    make_study, tmp_path, monkeypatch, changes, gpu, cpuinfo, noted
):
    import torch

    from hpsearch.spec import load_spec
    from hpsearch.training import trainer

    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(trainer, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    path = make_study(**changes)
    note = trainer.cpu_bf16_note(load_spec(path))
    assert (note is not None) is noted
    if noted:
        assert note.startswith(f"note: {path}: bf16 on this CPU") and "13.7x" in note and "train.bf16: false" in note


def test_validate_and_run_say_an_old_argument_name_once_instead_of_transformers_warning_each_time(make_study, capsys):
    import warnings

    path = make_study(train__gradient_checkpointing=True, train__num_train_epochs=1, budget__n_trials=2)
    note = f"note: {path}: transformers takes these old names until version 6: rename train.gradient_checkpointing"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(["validate", str(path)]) == 0
        assert f"  {note} to activation_checkpointing" in capsys.readouterr().out
        assert run(path) == 0  # --quiet: said all the same, once for the two trials
        assert capsys.readouterr().out.count(note) == 1
    assert not [w for w in caught if "gradient_checkpointing" in str(w.message)], [str(w.message) for w in caught]
    assert {t.user_attrs["training_arguments_all"]["activation_checkpointing"] for t in load(path).trials} == {True}


def test_validate_and_run_say_when_bf16_would_be_emulated_on_the_cpu(make_study, tmp_path, monkeypatch, capsys):
    from hpsearch.training import trainer

    (tmp_path / "cpuinfo").write_text(NO_BF16_CPU)
    monkeypatch.setattr(trainer, "CPUINFO", tmp_path / "cpuinfo")
    path = make_study(train__bf16=True, train__num_train_epochs=1, budget__n_trials=1)
    assert cli.main(["validate", str(path)]) == 0
    assert f"  note: {path}: bf16 on this CPU" in capsys.readouterr().out
    assert run(path) == 0  # --quiet: the note is said all the same, once
    out = capsys.readouterr().out
    assert out.count(f"note: {path}: bf16 on this CPU") == 1
    assert load(path).trials[0].state.name == "COMPLETE"


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, field",
    [
        (["model.dropout=0.2"], "model.dropout"),
        (["augmentation.ops=[word_swap]", "augmentation.probability=0.1"], "augmentation.ops"),
    ],
)
def test_a_study_stored_before_a_setting_existed_resumes_only_with_it_off(make_study, capsys, change, field):
    path = make_study(budget={"n_trials": 1})
    assert run(path) == 0
    study = load(path)
    old = study.user_attrs["spec"]  # as a study from before dropout and augmentation were settings
    old.pop("augmentation")
    old["model"].pop("dropout")
    study.set_user_attr("spec", old)
    assert cli.main(["run", str(path), "--n-trials", "2", *[a for c in change for a in ("--set", c)]]) == 2
    assert f"{field}: the stored study 'tiny' ran with" in capsys.readouterr().err
    assert len(load(path).trials) == 1
    assert cli.main(["run", str(path), "--n-trials", "2", "--quiet"]) == 0  # unchanged: it resumes
