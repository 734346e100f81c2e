"""Multi-device trials (`resources.devices_per_trial`): two gloo ranks per trial on the CPU, started by torchrun
from the worker; rank 0 reports and decides, every rank leaves at its step, a killed rank fails its trial."""

from __future__ import annotations

import math
import os
import signal
import subprocess
from pathlib import Path

import optuna
import pytest

from hpsearch.orchestration import pool
from hpsearch.spec import SpecError, load_spec
from tests.test_workers import ENV, HPSEARCH, Live, trials

States = optuna.trial.TrialState
TWO = {"devices_per_trial": 2}


def _rank_pid(rank: int, folder: Path) -> int | None:
    """The pid of a running rank of a trial of the study in `folder` (its environment says which)."""
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"hpsearch.orchestration.rank" in cmdline and f"RANK={rank}".encode() in environ:
            if any(v.startswith(b"HPSEARCH_STORAGE=") and str(folder).encode() in v for v in environ):
                return int(entry.name)
    return None


@pytest.mark.slow
def test_a_sweep_on_two_ranks_per_trial_survives_a_killed_rank_and_records_both_ranks(make_study):
    """Trial 0 loses rank 1 to kill -9 mid-training: it fails with the reason, no rank is left behind, and
    the sweep goes on: trial 1 trains on both ranks to its end, its metrics over the whole eval split, its
    cost (device_seconds) the time of both devices."""
    path = make_study(
        resources=TWO,
        train={"num_train_epochs": 10, "use_cpu": True},
        evaluation={"every": 0.05},
        objective={"metric": "accuracy", "cost": "device_seconds"},  # a cost: the devices' time, all ranks
    )
    run = Live([HPSEARCH, "run", str(path)], path.parent)
    run.wait_for(r"trial   0  step\s+\d+/", timeout=240)
    pid = _rank_pid(1, path.parent)
    assert pid is not None, run.text
    os.kill(pid, signal.SIGKILL)
    assert run.finish(timeout=400) == 0, run.text
    first, second = trials(path)
    assert first.state == States.FAIL, run.text
    assert first.user_attrs["error"].startswith("rank 1 of 2 died without finishing"), first.user_attrs["error"]
    assert "rank 1 of 2 died" in run.text
    assert second.state == States.COMPLETE, run.text
    attrs = second.user_attrs
    assert attrs["ranks"] == 2
    # The worker that owns the trial, not its rank 0: another worker must not take the trial for dead
    # once rank 0 has exited while the worker tells its outcome.
    assert attrs["worker"].endswith(f":{run.proc.pid}")
    assert attrs["rank_steps"] == [attrs["steps_trained"], attrs["steps_trained"]] == [attrs["max_steps"]] * 2
    # 96 rows over 2 ranks: each optimizer step takes one batch per rank.
    batch = second.params["per_device_train_batch_size"]
    assert attrs["max_steps"] == 10 * math.ceil(96 / (2 * batch))
    last = attrs["curve"][-1]
    # Metrics of predictions gathered from both ranks: the whole split of 32 rows (16 per rank).
    p = last["eval_accuracy"]
    assert round(p * 32) == p * 32 and last["eval_accuracy_se"] == pytest.approx(math.sqrt(p * (1 - p) / 32))
    # A classifier's mean loss is not multiplied by the number of ranks (ln 4 is chance on 4 labels).
    assert last["eval_loss"] < 1.5 and attrs["train_loss"] < 1.5
    assert attrs["device_seconds"] >= 2 * attrs["wall_time_s"] and second.values[1] == attrs["device_seconds"]
    assert _rank_pid(0, path.parent) is None and _rank_pid(1, path.parent) is None


@pytest.mark.slow
def test_a_pruned_two_rank_trial_leaves_training_on_both_ranks_at_the_step_it_was_pruned_at(make_study):
    """A stored trial perfect at every point: the median pruner prunes the new trial at its first evaluation,
    on rank 0; the broadcast makes rank 1 leave at the same step (each rank's last step is recorded)."""
    pruner = {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0, "tolerance_se": 0}
    path = make_study(resources=TWO, pruner=pruner, budget={"n_trials": 2})
    storage = f"sqlite:///{path.parent / 'tiny.db'}"
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    study.set_user_attr("spec", load_spec(path).to_dict())  # as `hpsearch run` stores it
    distributions = {
        "learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True),
        "per_device_train_batch_size": optuna.distributions.CategoricalDistribution([8, 16]),
    }
    perfect = {at: 1.0 for at in (48, 96, 144, 192)}  # the schedule's points: 96 rows x 2 epochs, every 0.25
    params = {"learning_rate": 5e-3, "per_device_train_batch_size": 8}
    study.add_trial(
        optuna.trial.create_trial(params=params, distributions=distributions, value=1.0, intermediate_values=perfect)
    )
    result = subprocess.run([HPSEARCH, "run", str(path)], capture_output=True, text=True, env=ENV, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    pruned = trials(path)[1]
    assert pruned.state == States.PRUNED, result.stdout
    attrs = pruned.user_attrs
    assert attrs["prune_reason"] == "pruner" and attrs["ranks"] == 2
    pruned_at = attrs["curve"][-1]["step"]  # the evaluation that condemned it: its first
    assert len(attrs["curve"]) == 1 and pruned_at < attrs["max_steps"]
    assert attrs["rank_steps"] == [pruned_at, pruned_at] == [attrs["steps_trained"]] * 2


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"resources": {"devices_per_trial": 0}}, "resources.devices_per_trial"),
        ({"resources": TWO, "model__save_best": True}, "model.save_best"),
    ],
)
def test_devices_per_trial_below_one_or_with_what_one_rank_alone_would_do_exits_2(make_study, changes, key):
    path = make_study(**changes)
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        load_spec(path)
    result = subprocess.run([HPSEARCH, "run", str(path)], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2 and key in result.stderr + result.stdout
    assert not (path.parent / "tiny.db").exists()


def test_auto_packs_trials_on_the_gpus_and_pins_each_worker_to_its_own(monkeypatch):
    monkeypatch.setattr(pool, "visible_gpus", lambda: ["0", "1", "2", "3", "4"])
    assert pool.count("auto", devices_per_trial=2) == 2  # 5 GPUs // 2: the fifth idles
    envs = [pool._env(slot, 2, ["0", "1", "2", "3", "4"], "sqlite:///x.db", devices_per_trial=2) for slot in (0, 1)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1", "2,3"]
    with pytest.raises(
        SpecError, match=r"--workers: 3 workers x 2 devices per trial need 6 GPUs; this machine shows 5"
    ):
        pool.count("3", devices_per_trial=2)
    with pytest.raises(SpecError, match=r"resources.devices_per_trial: 1 worker x 6 devices per trial need 6 GPUs"):
        pool.count("1", devices_per_trial=6)  # `hpsearch worker` checks it too
    monkeypatch.setattr(pool, "visible_gpus", lambda: [])
    monkeypatch.setattr(pool, "cores", lambda: 8)
    assert pool.count("auto", devices_per_trial=2) == 1  # on the CPU: the cores // 4, over the ranks
    env = pool._env(0, 1, [], "sqlite:///x.db", devices_per_trial=2)
    assert env["OMP_NUM_THREADS"] == "4"  # each rank its share of the cores


def test_a_cpu_worker_with_more_ranks_than_cores_is_allowed(monkeypatch):
    """On the CPU nothing is held per rank but threads: any number runs (slower), as today's workers do."""
    monkeypatch.setattr(pool, "visible_gpus", lambda: [])
    monkeypatch.setattr(pool, "cores", lambda: 2)
    assert pool.count("4", devices_per_trial=2) == 4


def _agree_on_two_ranks(rank: int, port: int, out: str) -> None:
    """One of two gloo ranks: rank 0's reporter and stopper decide; both ranks record what they did."""
    import json

    import torch.distributed as dist
    from transformers import TrainerControl, TrainerState

    from hpsearch.training.callbacks import EarlyStopping
    from hpsearch.training.distributed import RankAgreement, Ranks

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    reporter = type("Reporter", (), {"pending": None, "training": True})()
    stopper = EarlyStopping("eval_accuracy", "maximize", patience=1) if rank == 0 else None
    agreement = RankAgreement(Ranks(rank, 2, dist.group.WORLD), reporter, stopper)
    state, seen = TrainerState(max_steps=100), []
    for step, accuracy in ((10, 0.5), (20, 0.4)):  # the second evaluation stops training (patience 1)
        state.global_step, control = step, TrainerControl()
        if stopper is not None:
            stopper.on_evaluate(None, state, control, metrics={"eval_accuracy": accuracy})
        agreement.on_evaluate(None, state, control)
        seen.append(control.should_training_stop)
    state.global_step = 25
    if rank == 0:  # the divergence guard, deferred at a logged loss
        reporter.pending = optuna.TrialPruned("diverged: train loss nan at step 25")
    try:
        agreement.on_log(None, state, TrainerControl(), logs={"loss": float("nan")})
        pruned = None
    except optuna.TrialPruned as exc:
        pruned = str(exc)
    Path(out, f"{rank}.json").write_text(json.dumps({"stops": seen, "pruned": pruned}))
    dist.destroy_process_group()


def test_rank_zeros_stop_and_prune_reach_every_rank_at_the_same_step(tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_agree_on_two_ranks, args=(port, str(tmp_path)), nprocs=2, start_method="fork")
    lead, follower = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert lead["stops"] == follower["stops"] == [False, True]
    assert lead["pruned"] == "diverged: train loss nan at step 25"
    assert follower["pruned"] == "pruned by rank 0"


@pytest.mark.parametrize("stored, now", [(1, 2), (2, 1)])
def test_a_study_resumed_with_other_devices_per_trial_is_refused(make_study, stored, now):
    """The ranks multiply a trial's effective batch: its params would mean something else."""
    from hpsearch.orchestration import controller

    path = make_study(resources={"devices_per_trial": stored})
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}", direction="maximize")
    study.set_user_attr("spec", load_spec(path).to_dict())
    controller.check_resume(load_spec(path), study)  # the same: resumes
    with pytest.raises(SpecError, match=r"resources.*ran with"):
        controller.check_resume(load_spec(path, [f"resources.devices_per_trial={now}"]), study)


@pytest.mark.parametrize(
    "ends, error",
    [
        ([{"state": "fail", "error": "ValueError: x"}, {"state": "terminated"}], "ValueError: x"),
        (
            [{"state": "terminated"}, {"state": "fail", "error": "OutOfMemoryError: y"}],
            "rank 1 of 2: OutOfMemoryError: y",
        ),
        ([None, {"state": "terminated"}], "rank 0 of 2 died without finishing"),
        ([{"state": "terminated"}, {"state": "terminated"}], "the ranks were stopped before the end"),
        (
            [{"state": "complete", "values": [0.5]}, {"state": "complete", "values": [0.25]}],
            "the ranks disagree on the outcome: rank 0 complete 0.5, rank 1 complete 0.25",
        ),
        ([{"state": "complete", "values": [0.5]}, {"state": "pruned", "reason": "r"}], "the ranks disagree"),
    ],
)
def test_what_the_ranks_left_fails_the_trial_with_the_reason_that_explains_it(tmp_path, ends, error):
    """Whatever the ranks' ends, the trial's error names the cause: a rank that died before the ranks the
    agent then stopped, a rank's own error, or ranks that disagree (they score the same gathered rows)."""
    import json

    from hpsearch.orchestration import ranks

    for rank, end in enumerate(ends):
        if end is not None:
            ranks.rank_file(tmp_path, rank).write_text(json.dumps({"rank": rank, "steps": 3, **end}))
    trial = optuna.create_study().ask()
    with pytest.raises(ranks.RanksFailed, match=error):
        ranks._outcome(trial, tmp_path, 2, 1)
    assert trial.user_attrs["error"].startswith(error)
    assert trial.user_attrs["rank_steps"] == [None if end is None else 3 for end in ends]


def test_ranks_that_agree_give_rank_zeros_outcome(tmp_path):
    import json

    from hpsearch.orchestration import ranks

    for rank in (0, 1):
        end = {"rank": rank, "steps": 6, "state": "pruned", "reason": "pruned at 48 samples" if rank == 0 else "by 0"}
        ranks.rank_file(tmp_path, rank).write_text(json.dumps(end))
    with pytest.raises(optuna.TrialPruned, match="pruned at 48 samples"):
        ranks._outcome(optuna.create_study().ask(), tmp_path, 2, 0)


@pytest.mark.parametrize("accumulation", [None, 3])
def test_an_exported_two_rank_trial_trains_its_effective_batch_on_one_device(accumulation):
    """Each rank took a micro-batch per step: on one device, `hpsearch train` accumulates as many."""
    from hpsearch.results import export

    arguments = {"per_device_train_batch_size": 8}
    if accumulation is not None:
        arguments["gradient_accumulation_steps"] = accumulation
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec", {"objective": {"metric": "accuracy"}})
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"training_arguments": arguments, "ranks": 2}))
    exported, manifest = export.build(study, study.best_trial, "sqlite:///x.db")
    assert exported["gradient_accumulation_steps"] == 2 * (accumulation or 1) and manifest["ranks"] == 2
    assert exported["per_device_train_batch_size"] == 8
