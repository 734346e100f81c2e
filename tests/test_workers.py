"""Several workers on one study: `hpsearch run --workers N`, `hpsearch worker`, crashes, stops, budgets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from hpsearch.orchestration import worker
from hpsearch.results.storage import open_storage

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
GRID = {"learning_rate": [1e-3, 3e-3, 1e-2], "per_device_train_batch_size": [8, 16]}
SLOW = {"num_train_epochs": 10, "use_cpu": True}  # a few seconds per trial (20 evaluations, EVERY)
EVERY = {"every": 0.05}
States = optuna.trial.TrialState


class Live:
    """A command whose output lines are collected while it runs."""

    def __init__(self, args: list[str], cwd: Path, env: dict | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**ENV, **(env or {})}, cwd=cwd
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 180, after: int = 0) -> re.Match:
        """The first line from index `after` on that matches `pattern`, waiting for it to be printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines)[after:]:
                if m := re.search(pattern, line):
                    return m
            assert self.proc.poll() is None or self.reader.is_alive(), self.text
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.text}")

    def finish(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def trials(path: Path, url: str | None = None) -> list[optuna.trial.FrozenTrial]:
    url = url or f"sqlite:///{path.parent / 'tiny.db'}"
    return optuna.load_study(study_name="tiny", storage=url).trials


def accounted(all_trials: list) -> list:
    """The trials the budget counts (not interrupted, not died-and-re-run, not skipped)."""
    dead = {n for t in all_trials for n in t.system_attrs.get("retry_history", [])}
    return [
        t
        for t in all_trials
        if t.state.is_finished()
        and not t.user_attrs.get("interrupted")
        and not t.user_attrs.get("skipped")
        and t.number not in dead
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"workers still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.2)


def both_mid_trial(run: Live, timeout: float = 180) -> None:
    """Wait until both workers of `run` are mid-trial: each has printed an evaluation since the other
    started training, and the latest evaluation of each is in the first three quarters of its trial (so
    neither is about to finish its trial and sit between trials when a signal comes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mark = len(run.lines)
        for i in (0, 1):
            run.wait_for(rf"^w{i} trial +\d+  step", after=mark)
        since = "\n".join(run.lines[mark:])
        latest = [re.findall(rf"^w{i} trial +\d+  step +(\d+)/(\d+)", since, re.M)[-1] for i in (0, 1)]
        if all(4 * int(step) <= 3 * int(of) for step, of in latest):
            return
    raise AssertionError(f"the two workers were never mid-trial together:\n{run.text}")


def worker_pids(live: Live, n: int) -> list[int]:
    return [int(live.wait_for(rf"^w{i} started: pid (\d+)").group(1)) for i in range(n)]


# --- the budget and the guards, on a hand-built study (fast) ---------------------------------------


def hand_study(tmp_path, grid: bool = False) -> optuna.Study:
    sampler = optuna.samplers.GridSampler({"x": [1, 2, 3]}, seed=0) if grid else None
    return optuna.create_study(
        study_name="hand", storage=open_storage(f"sqlite:///{tmp_path / 'h.db'}", create=True), sampler=sampler
    )


def test_next_step_runs_queued_trials_waits_on_running_ones_and_stops_when_spent(tmp_path):
    study = hand_study(tmp_path)
    budget = worker.Budget(total=2, device_hours=None)
    assert budget.next_step(study) == "run"
    first = study.ask()
    second = study.ask()
    assert budget.next_step(study) == "wait"  # both budgeted trials are running elsewhere
    study.tell(first, 1.0)
    second.set_user_attr("interrupted", True)  # an interrupted trial does not count: one more must run
    study.tell(second, state=States.FAIL)
    assert budget.next_step(study) == "run"
    study.enqueue_trial({"x": 1})
    assert budget.next_step(study) == "run"
    queued = study.ask()
    study.tell(queued, 2.0)
    assert budget.next_step(study) == "stop"


def test_a_trial_started_past_the_budget_is_skipped_and_not_counted(tmp_path):
    study = hand_study(tmp_path)
    done, running, late = study.ask(), study.ask(), study.ask()  # a race: three started for a budget of 2
    study.tell(done, 1.0)
    assert worker.skip_reason(running, total=2) is None  # the lower number keeps its place
    assert worker.skip_reason(late, total=2) == "budget of 2 trials already started"
    study.enqueue_trial({})
    rerun = study.ask()  # a queued re-run always runs
    assert worker.skip_reason(rerun, total=2) is None


def test_two_trials_on_one_grid_point_keep_the_lower_number(tmp_path):
    study = hand_study(tmp_path, grid=True)
    a, b, c = study.ask(), study.ask(), study.ask()
    for t in (a, b, c):
        t.suggest_categorical("x", [1, 2, 3])
    d = study.ask()  # every point has started: Optuna's GridSampler hands out a running one again
    d.suggest_categorical("x", [1, 2, 3])
    ids = {t.number: study._storage.get_trial_system_attrs(t._trial_id)["grid_id"] for t in (a, b, c, d)}
    assert len(set(ids.values())) == 3 and list(ids.values()).count(ids[3]) == 2
    assert [worker.skip_reason(t, total=None) for t in (a, b, c)] == [None, None, None]
    twin = next(n for n in (0, 1, 2) if ids[n] == ids[3])
    assert worker.skip_reason(d, total=None) == f"grid point {ids[3]} is trial {twin}'s"


# --- worker processes ----------------------------------------------------------------------------


@pytest.mark.slow
def test_workers_share_a_grid_each_point_once_and_each_shows_progress(make_study):
    path = make_study(sampler={"type": "grid"}, search=GRID, budget={"n_trials": 100})
    run = Live([HPSEARCH, "run", str(path), "--workers", "3"], path.parent)
    assert run.finish() == 0, run.text
    for i in range(3):
        assert re.search(rf"^w{i} started: pid \d+, CPU threads: 1$", run.text, re.M), run.text
        assert re.search(rf"^w{i} trial +\d+  (start|COMPLETE)", run.text, re.M), run.text
    all_trials = trials(path)
    done = accounted(all_trials)
    assert [t.state for t in done] == [States.COMPLETE] * 6  # the grid's six points, no more
    # two workers asking at one moment can draw one point: the later trial is skipped before it trains
    late = [t for t in all_trials if t.number not in {d.number for d in done}]
    assert all(t.state == States.PRUNED and t.user_attrs["skipped"].startswith("grid point ") for t in late)
    assert all(not t.intermediate_values for t in late)
    points = Counter((t.params["learning_rate"], t.params["per_device_train_batch_size"]) for t in done)
    assert len(points) == 6 and set(points.values()) == {1}
    assert len({t.user_attrs["worker"] for t in done}) >= 2
    assert all(t.user_attrs["memory_after_mb"] > 0 and t.user_attrs["memory_baseline_mb"] > 0 for t in done)
    skipped = f", {len(late)} pruned" if late else ""  # a skipped duplicate counts as pruned in the summary
    assert re.search(rf"^study tiny: 6 complete{skipped} \(\d+s this run\); best ", run.lines[-1]), run.text


@pytest.mark.slow
def test_a_killed_worker_is_restarted_its_trial_re_run_and_no_grid_point_runs_twice(make_study):
    path = make_study(
        sampler={"type": "grid"},
        search={**GRID, "learning_rate": GRID["learning_rate"][:2]},  # 4 points: each runs once, the killed one again
        budget={"n_trials": 100},
        train=SLOW,
        evaluation=EVERY,
        heartbeat={"interval": 1, "grace_period": 3, "max_retries": 2},
    )
    run = Live([HPSEARCH, "run", str(path), "--workers", "2"], path.parent)
    pids = worker_pids(run, 2)
    run.wait_for(r"^w0 trial +\d+  step")
    os.kill(pids[0], signal.SIGKILL)
    assert run.finish() == 0, run.text
    assert "w0 killed by SIGKILL; starting it again (1 of 3)" in run.text
    all_trials = trials(path)
    dead = [t for t in all_trials if t.state == States.FAIL]
    assert len(dead) == 1 and "RUNNING" not in {t.state.name for t in all_trials}
    retry = [t for t in all_trials if t.system_attrs.get("failed_trial") == dead[0].number]
    assert len(retry) == 1 and retry[0].state == States.COMPLETE and retry[0].params == dead[0].params
    counted = accounted(all_trials)
    points = Counter((t.params["learning_rate"], t.params["per_device_train_batch_size"]) for t in counted)
    assert len(counted) == 4 and len(points) == 4 and set(points.values()) == {1}
    skipped = [t for t in all_trials if t.user_attrs.get("skipped")]
    assert all(t.state == States.PRUNED for t in skipped)  # a late duplicate never trains


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_run_stops_its_workers_cleanly_and_the_same_command_resumes(make_study, how):
    """SIGTERM (a scheduler's stop; Ctrl-C works the same way) and SIGKILL of `hpsearch run` itself:
    the workers record their running trials as interrupted, queue their re-runs and exit."""
    # 4, not the 2 the signal interrupts: under load a trial can end between the check and the signal, and its
    # worker must then be in another trial, not done (with 2 the test failed so, 1 interrupted of 2)
    path = make_study(budget={"n_trials": 4}, train=SLOW, evaluation=EVERY)
    run = Live([HPSEARCH, "run", str(path), "--workers", "2"], path.parent)
    pids = worker_pids(run, 2)
    both_mid_trial(run)
    run.proc.send_signal(getattr(signal, how))
    code = run.finish()
    wait_gone(pids)  # after SIGKILL of run, its workers get SIGTERM from the kernel (parent-death signal)
    assert code == (130 if how == "SIGTERM" else -9), run.text
    assert not re.search(r"^w\d+ *$", run.text, re.M), run.text  # no worker's blank line as a bare label
    stopped = trials(path)
    interrupted = [t for t in stopped if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 2 and all(t.state == States.FAIL for t in interrupted)
    queued = [t for t in stopped if t.state == States.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in queued) == sorted(t.number for t in interrupted)
    assert "RUNNING" not in {t.state.name for t in stopped}

    again = Live([HPSEARCH, "run", str(path), "--workers", "2", "--quiet"], path.parent)
    assert again.finish() == 0, again.text
    resumed = trials(path)
    assert len(accounted(resumed)) == 4 and {t.state.name for t in resumed} <= {"COMPLETE", "FAIL"}
    for t in interrupted:  # each interrupted config ran again, once
        reruns = [r for r in resumed if r.user_attrs.get("retry_of") == t.number]
        assert len(reruns) == 1 and reruns[0].params == t.params and reruns[0].state == States.COMPLETE


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_number_of_workers_is_a_usage_error(make_study, value):
    path = make_study()
    out = subprocess.run(
        [HPSEARCH, "run", str(path), "--workers", value], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert out.returncode == 2
    assert f"--workers: {value!r} is not a number of workers (a whole number >= 1, or auto)" in out.stderr
    assert not (path.parent / "tiny.db").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)  # as long as Live.finish waits: about 2 min in CI, more on a shared machine
def test_four_workers_finish_200_trials_on_sqlite_with_the_dashboard_open(make_study, tmp_path):
    """Issue 4: zero "database is locked", zero lost trials, while optuna-dashboard polls the same file."""
    from tests.test_dashboard import get, start_dashboard, stop, study_names

    path = make_study(
        budget={"n_trials": 200},
        search={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        evaluation={"every": 1.0},
        train={"max_steps": 2, "per_device_train_batch_size": 8, "use_cpu": True},
    )
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    run = Live([HPSEARCH, "run", str(path), "--workers", "4", "--quiet"], path.parent)
    dashboard, polls = None, []
    try:
        deadline = time.monotonic() + 120
        while "tiny" not in study_names(tmp_path / "tiny.db"):
            assert run.proc.poll() is None and time.monotonic() < deadline, run.text
            time.sleep(0.2)
        dashboard, base = start_dashboard(url, tmp_path, "--study", "tiny")
        study_id = get(f"{base}/api/studies")[1]["study_summaries"][0]["study_id"]
        while run.proc.poll() is None:
            polls.append(get(f"{base}/api/studies/{study_id}"))
            time.sleep(0.5)
        assert run.finish() == 0, run.text
    finally:
        if dashboard is not None:
            stop(dashboard)
        if run.proc.poll() is None:
            run.proc.kill()
    every = trials(path, url)
    # Two workers can start a trial at the same moment near the end: the later one is skipped, not run.
    skipped = [t for t in every if t.user_attrs.get("skipped")]
    assert all(t.state == States.PRUNED and t.user_attrs["skipped"].startswith("budget") for t in skipped)
    done = [t for t in every if t not in skipped]
    assert len(done) == 200 and {t.state for t in done} == {States.COMPLETE}
    assert len({t.user_attrs["worker"] for t in done}) == 4
    assert len(polls) > 10 and all(status == 200 for status, _ in polls)
    assert len({len(detail["trials"]) for _, detail in polls}) > 5  # it watched the study grow
    logs = run.text + (tmp_path / "dashboard.out").read_text() + (tmp_path / "dashboard.err").read_text()
    assert "locked" not in logs and "Traceback" not in logs, logs[-3000:]


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_started_apart_share_a_postgresql_study(make_study, postgres_db, tmp_path):
    """As on a cluster: `hpsearch worker` processes started on their own, one PostgreSQL database."""
    from tests.pgserver import PASSWORD

    path = make_study(budget={"n_trials": 6}, train={"num_train_epochs": 4, "use_cpu": True})
    joined = [Live([HPSEARCH, "worker", str(path), "--storage", postgres_db], tmp_path) for _ in range(2)]
    for live in joined:
        assert live.finish() == 0, live.text
        assert re.search(r"^worker \S+:\d+ joined study tiny: \d/6 trials done in postgresql://", live.text, re.M)
    stored = trials(path, postgres_db)
    done = accounted(stored)  # two workers starting a trial at one moment at the end: the later one is skipped
    assert len(done) == 6 and {t.state for t in done} == {States.COMPLETE}
    assert all(t.state == States.PRUNED for t in stored if t.user_attrs.get("skipped"))
    assert len({t.user_attrs["worker"] for t in done}) == 2
    # `run --workers` on the same database adds to the study; the password is never printed.
    more = Live([HPSEARCH, "run", str(path), "--storage", postgres_db, "--workers", "2", "--n-trials", "8"], tmp_path)
    assert more.finish() == 0, more.text
    assert "study tiny: 6/8 trials done in postgresql://hpsearch:***@127.0.0.1" in more.text
    status = subprocess.run(
        [HPSEARCH, "status", str(path), "--storage", postgres_db], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert status.returncode == 0 and status.stdout.count("COMPLETE") == 8
    for text in (*(live.text for live in joined), more.text, status.stdout, status.stderr):
        assert PASSWORD not in text


def test_a_cuda_error_fails_its_trial_and_ends_the_worker_with_status_3(make_study, capsys, monkeypatch):
    """A device-side assert leaves the CUDA context unusable: the trial is recorded, the process exits 3
    so that `run --workers` (or the user) starts a fresh one, and the next run goes on."""
    from hpsearch import cli
    from hpsearch.tasks import classification

    path = make_study(budget={"n_trials": 2})
    real = classification.build_model

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(classification, "build_model", broken)
    assert cli.main(["run", str(path), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "error: the GPU failed (trial 0: CUDA error: device-side assert triggered)" in err
    first = trials(path)
    assert [t.state for t in first] == [States.FAIL] and "device-side assert" in first[0].user_attrs["error"]
    monkeypatch.setattr(classification, "build_model", real)
    assert cli.main(["run", str(path), "--quiet"]) == 0
    # counted as a failed trial (a device-side assert is often the config's or the data's doing)
    assert [t.state for t in trials(path)] == [States.FAIL, States.COMPLETE]


def test_out_of_memory_is_not_a_broken_device():
    import torch

    assert worker.device_broken(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert worker.device_broken(torch.AcceleratorError("anything"))
    assert not worker.device_broken(torch.OutOfMemoryError("CUDA out of memory"))
    assert not worker.device_broken(ValueError("bad label"))


def test_auto_is_one_worker_per_gpu_else_one_per_four_cores(monkeypatch):
    from hpsearch.orchestration import pool

    monkeypatch.setattr(pool, "visible_gpus", lambda: ["0", "3"])
    assert pool.count("auto") == 2 and pool.count("5") == 5
    monkeypatch.setattr(pool, "visible_gpus", lambda: [])
    monkeypatch.setattr(pool, "cores", lambda: 16)
    assert pool.count("auto") == 4
    monkeypatch.setattr(pool, "cores", lambda: 2)
    assert pool.count("auto") == 1


def test_each_worker_gets_its_gpu_or_its_share_of_the_cores(monkeypatch):
    from hpsearch.orchestration import pool

    monkeypatch.setattr(pool, "cores", lambda: 8)
    env = pool._env(slot=3, n=4, gpus=["1", "2"], storage_url="sqlite:///x.db")
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and env["HPSEARCH_STORAGE"] == "sqlite:///x.db"
    env = pool._env(slot=0, n=4, gpus=[], storage_url="sqlite:///x.db")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"  # 8 cores shared by 4 workers


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_workers_opening_the_study_together_do_not_draw_the_same_configs(make_study, tmp_path, kind):
    """Workers open the study at the same trial count; unsalted, their samplers would draw in step."""
    from hpsearch.spec import load_spec

    spec = load_spec(make_study(sampler={"type": kind, "seed": 0}))

    def first_draws(salts: tuple[int, int], name: str) -> list[float]:
        url = f"sqlite:///{tmp_path / name}"
        studies = [worker.open_study(spec, open_storage(url, create=True), salt) for salt in salts]
        return [s.ask().suggest_float("learning_rate", 1e-3, 1e-2, log=True) for s in studies]

    same = first_draws((0, 0), "unsalted.db")
    assert same[0] == same[1]  # what the salt is for
    salted = first_draws((101, 202), "salted.db")
    assert salted[0] != salted[1]


@pytest.mark.slow
def test_a_run_restarted_after_kill_9_re_runs_its_own_dead_trial_at_once(make_study):
    """`kill -9` of a one-worker `hpsearch run` leaves its trial RUNNING. Run again on the same host, it
    finds that trial's process gone, fails it and re-runs it at once: with a grace period of an hour the
    second run could not finish otherwise."""
    path = make_study(budget={"n_trials": 1}, train=SLOW, evaluation=EVERY, heartbeat={"grace_period": 3600})
    tmp = {"TMPDIR": str(path.parent / "tmp")}  # the trials' scratch folders, apart from other tests'
    os.mkdir(tmp["TMPDIR"])
    first = Live([HPSEARCH, "run", str(path)], path.parent, env=tmp)
    first.wait_for(r"^trial +0  step")
    first.proc.kill()
    assert first.finish() == -9
    (dead,) = trials(path)
    assert dead.state == States.RUNNING and dead.user_attrs["worker"].endswith(f":{first.proc.pid}")
    (left,) = Path(tmp["TMPDIR"]).glob(f"hpsearch-tiny-trial0-pid{first.proc.pid}@*")  # a killed process's

    again = Live([HPSEARCH, "run", str(path)], path.parent, env=tmp)
    assert again.finish(timeout=300) == 0, again.text
    assert f"trial 0: its process {dead.user_attrs['worker']} no longer exists: re-run at once" in again.text
    assert "removed 1 scratch folder(s) of dead hpsearch processes" in again.text and not left.exists()
    assert list(Path(tmp["TMPDIR"]).iterdir()) == []  # the re-run removed its own
    failed, rerun = trials(path)
    assert failed.state == States.FAIL and "no longer exists" in failed.user_attrs["error"]
    assert rerun.state == States.COMPLETE and rerun.params == dead.params
    assert rerun.user_attrs.get("error") is None  # Optuna's retry copied the dead run's error: cleared
    assert rerun.system_attrs["failed_trial"] == 0  # queued as a stale heartbeat's re-run is: counted once
    assert len(accounted([failed, rerun])) == 1


def test_a_worker_waiting_on_another_hosts_trial_says_which_and_for_how_long(tmp_path):
    from hpsearch.orchestration import reclaim

    study = hand_study(tmp_path)
    running = study.ask()
    study._storage.set_trial_user_attr(running._trial_id, "worker", "gpu-node-7:4242")  # another host's
    assert reclaim.reclaim(study, print) == []  # not this host's: it is not judged here
    said: list[str] = []
    waiting = reclaim.Waiting(grace_period=120, every=30)
    waiting.tick(study, said.append)
    waiting.tick(study, said.append)  # within 30 s: said once
    assert said == [
        f"waiting 0 s for trial {running.number} (gpu-node-7:4242): a trial whose worker died is re-run once its"
        " heartbeat is 120 s old"
    ]


def test_a_worker_waiting_on_a_live_trial_of_its_own_host_says_nothing_of_heartbeats(tmp_path, monkeypatch):
    """Two workers of one `run`: the one left without work waits for the other's last trial."""
    from hpsearch.orchestration import reclaim

    study = hand_study(tmp_path)
    running = study.ask()
    study._storage.set_trial_user_attr(running._trial_id, "worker", f"{reclaim.HOST}:{os.getpid()}")  # alive
    clock = iter([100.0, 100.0, 131.0])
    monkeypatch.setattr(reclaim.time, "monotonic", lambda: next(clock))
    said: list[str] = []
    waiting = reclaim.Waiting(grace_period=120, every=30)
    waiting.tick(study, said.append)  # at 0 s: nothing (it is about to end, or it would be re-run at once)
    waiting.tick(study, said.append)
    assert said == []
    waiting.tick(study, said.append)  # 31 s on
    assert said == [f"waiting 31 s for trial {running.number} ({reclaim.HOST}:{os.getpid()}) to finish (on this host)"]
