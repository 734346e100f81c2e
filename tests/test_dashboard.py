"""The real optuna-dashboard, started as `hpsearch dashboard` starts it, read through its HTTP API (loopback only)."""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import optuna
import pytest

from hpsearch.results import dashboard
from hpsearch.results.storage import open_storage

ROOT = Path(__file__).resolve().parent.parent
States = optuna.trial.TrialState


def start_dashboard(
    url: str, log_dir: Path, *extra: str, study_file: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """Start the dashboard on a free loopback port (through `hpsearch dashboard STUDY` when given a
    study file); wait until it answers. Returns (process, base URL)."""
    out, err = log_dir / "dashboard.out", log_dir / "dashboard.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        cmd = [sys.executable, "-m", "hpsearch.results.dashboard", url, "--port", "0", *extra]
        if study_file is not None:
            verb = Path(sys.executable).parent / "hpsearch"
            cmd = [str(verb), "dashboard", str(study_file), "--storage", url, "--port", "0", *extra]
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = out.read_text().partition("\n")
        if first[1]:
            assert first[0].startswith("dashboard: http://127.0.0.1:") and first[0].endswith("/dashboard")
            base = first[0].removeprefix("dashboard: ").removesuffix("/dashboard")
            assert get(f"{base}/api/meta")[0] == 200
            return proc, base
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop(proc)
    raise AssertionError(f"dashboard did not start: {err.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    return proc.returncode


def get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=15) as response:
        return response.status, json.loads(response.read())


def served_trials(detail: dict) -> list[tuple]:
    return [
        (t["number"], t["state"], {p["name"]: p["param_external_value"] for p in t["params"]}, t.get("values"))
        for t in detail["trials"]
    ]


def stored_trials(study: optuna.Study) -> list[tuple]:
    return [
        (t.number, t.state.name.capitalize(), {k: str(v) for k, v in t.params.items()}, t.values) for t in study.trials
    ]


@pytest.fixture
def stored_study(tmp_path) -> str:
    """A study with complete, pruned and failed trials, written as hpsearch writes (open_storage)."""
    url = f"sqlite:///{tmp_path / 'shown.db'}"
    study = optuna.create_study(study_name="shown", storage=open_storage(url, create=True), direction="maximize")
    optuna.create_study(study_name="other", storage=open_storage(url, create=False))
    for i, end in enumerate([States.COMPLETE, States.PRUNED, States.COMPLETE, States.FAIL]):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        trial.suggest_categorical("per_device_train_batch_size", [8, 16, 32])
        trial.report(0.1 * i, step=10)
        study.tell(trial, 0.5 + 0.1 * i if end == States.COMPLETE else None, state=end)
    return url


@pytest.mark.slow
def test_dashboard_serves_the_study_and_its_trials(stored_study, tmp_path):
    proc, base = start_dashboard(stored_study, tmp_path, "--study", "shown")
    try:
        status, listing = get(f"{base}/api/studies")
        assert status == 200
        assert [s["study_name"] for s in listing["study_summaries"]] == ["shown", "other"]
        shown = listing["study_summaries"][0]
        assert shown["directions"] == ["maximize"]
        status, detail = get(f"{base}/api/studies/{shown['study_id']}")
        assert status == 200 and detail["name"] == "shown"
        study = optuna.load_study(study_name="shown", storage=stored_study)
        assert served_trials(detail) == stored_trials(study)
        assert [t["state"] for t in detail["trials"]] == ["Complete", "Pruned", "Complete", "Fail"]
        assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]
        printed = (tmp_path / "dashboard.out").read_text().splitlines()
        assert printed[1] == f"study shown: {base}/dashboard/studies/{shown['study_id']}"
        assert printed[2] == f"storage: {stored_study}"
    finally:
        assert stop(proc) == 0  # SIGTERM stops it cleanly
    assert "Traceback" not in (tmp_path / "dashboard.err").read_text()


@pytest.mark.slow
def test_the_cli_verb_serves_the_study_file_s_study(stored_study, make_study, tmp_path):
    study_file = make_study(name="shown")
    proc, base = start_dashboard(stored_study, tmp_path, study_file=study_file)
    try:
        status, listing = get(f"{base}/api/studies")
        assert status == 200 and [s["study_name"] for s in listing["study_summaries"]] == ["shown", "other"]
        assert (tmp_path / "dashboard.out").read_text().splitlines()[1].startswith(f"study shown: {base}/dashboard/")
    finally:
        assert stop(proc) == 0


def catches_sigterm(pid: int) -> bool:
    """Process `pid` has a SIGTERM handler of its own (Linux: the SigCgt mask of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def terminated_while_starting(args: list[str], log_dir: Path) -> tuple[int, str]:
    """Start `hpsearch ARGS`, send SIGTERM as soon as it handles SIGTERM, while it has printed nothing yet (it
    is still starting: loading the study file, the libraries); returns (exit status, stderr)."""
    out, err = log_dir / "start.out", log_dir / "start.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "hpsearch"), *args], stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while not catches_sigterm(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.01)
        assert out.read_text() == "", "SIGTERM is handled only once it has started"
        proc.terminate()
        return proc.wait(timeout=60), err.read_text()
    finally:
        stop(proc)


def test_sigterm_during_start_up_stops_the_dashboard_as_ctrl_c_does(stored_study, make_study, tmp_path):
    study_file = make_study(name="shown")
    code, err = terminated_while_starting(
        ["dashboard", str(study_file), "--storage", stored_study, "--port", "0"], tmp_path
    )
    assert code == 130 and err.strip() == "interrupted", err  # a server has nothing to resume


def test_missing_database_exits_2_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    assert dashboard.serve(f"sqlite:///{missing}", port=0) == 2
    err = capsys.readouterr().err
    assert err == f"error: no study database at {missing} (run the study first)\n"
    assert not missing.exists()


def test_missing_study_exits_2(stored_study, capsys):
    assert dashboard.serve(stored_study, port=0, study_name="nope") == 2
    assert capsys.readouterr().err.startswith("error: no study named 'nope' in sqlite:///")


def test_a_busy_port_exits_1_with_one_line(stored_study, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert dashboard.serve(stored_study, "127.0.0.1", port) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1


def study_names(path: Path) -> list[str]:
    """Read without creating anything (optuna.study.get_all_study_names would create the tables)."""
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            return [name for (name,) in db.execute("SELECT study_name FROM studies")]
    except sqlite3.OperationalError:  # the sweep has not created the tables yet
        return []


def hammer(path: Path, stop_event: threading.Event, reads: list, errors: list) -> None:
    """Read as other tools do: snapshots held for a while (5 s busy timeout, like a bare sqlite3 client)."""
    try:
        with closing(sqlite3.connect(path, timeout=5, isolation_level=None)) as db:
            while not stop_event.is_set():
                db.execute("BEGIN")
                count = db.execute("SELECT count(*) FROM trials").fetchone()[0]
                db.execute("SELECT * FROM trial_intermediate_values").fetchall()
                reads.append((count, db.execute("PRAGMA journal_mode").fetchone()[0]))
                stop_event.wait(0.2)
                db.execute("COMMIT")
                stop_event.wait(0.05)
    except Exception as exc:  # reported by the test
        errors.append(repr(exc))


def reported_steps(detail: dict) -> int:
    return sum(len(t["intermediate_values"]) for t in detail["trials"])


@pytest.mark.slow
def test_dashboard_and_readers_beside_a_running_sweep(make_study, tmp_path):
    """optuna-dashboard issue 545: a dashboard on a live SQLite study crashed it with "database is locked"."""
    path = make_study(budget={"n_trials": 6}, evaluation__every=0.1)
    db_path, url = tmp_path / "tiny.db", f"sqlite:///{tmp_path / 'tiny.db'}"
    hpsearch = Path(sys.executable).parent / "hpsearch"
    sweep_out, sweep_err = tmp_path / "sweep.out", tmp_path / "sweep.err"
    with open(sweep_out, "w") as stdout, open(sweep_err, "w") as stderr:
        sweep = subprocess.Popen([hpsearch, "run", str(path), "--quiet"], stdout=stdout, stderr=stderr, cwd=tmp_path)
    proc = held = None
    stop_reading, reads, errors = threading.Event(), [], []
    reader = threading.Thread(target=hammer, args=(db_path, stop_reading, reads, errors), daemon=True)
    polls, progressed_under_snapshot = [], False
    try:
        deadline = time.monotonic() + 600
        while "tiny" not in study_names(db_path):
            assert sweep.poll() is None and time.monotonic() < deadline, sweep_err.read_text()[-2000:]
            time.sleep(0.2)
        proc, base = start_dashboard(url, tmp_path, "--study", "tiny")
        study_id = get(f"{base}/api/studies")[1]["study_summaries"][0]["study_id"]
        reader.start()
        # A reader that keeps one snapshot open: in rollback-journal mode no write could commit meanwhile.
        held = sqlite3.connect(db_path, timeout=5, isolation_level=None)
        held.execute("BEGIN")
        held_steps = held.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]
        while sweep.poll() is None and len(polls) < 3000:
            assert time.monotonic() < deadline, "the sweep took too long"
            polls.append(get(f"{base}/api/studies/{study_id}"))
            if held is not None and reported_steps(polls[-1][1]) > held_steps:
                progressed_under_snapshot = True
                held.execute("COMMIT")
                held.close()
                held = None
            time.sleep(0.2)
        assert sweep.wait(timeout=60) == 0, sweep_err.read_text()[-2000:]
        # the dashboard caches trials for 2 s: poll until it shows the finished study
        for _ in range(20):
            polls.append(get(f"{base}/api/studies/{study_id}"))
            if [t["state"] for t in polls[-1][1]["trials"]] == ["Complete"] * 6:
                break
            time.sleep(0.5)
    finally:
        if held is not None:
            held.close()
        stop_reading.set()
        if reader.is_alive():
            reader.join(timeout=30)
        stop(sweep)
        if proc is not None:
            stop(proc)
    assert errors == []
    assert progressed_under_snapshot
    study = optuna.load_study(study_name="tiny", storage=url)
    assert [t.state for t in study.trials] == [States.COMPLETE] * 6
    assert len(polls) > 5 and all(status == 200 for status, _ in polls)
    assert served_trials(polls[-1][1]) == stored_trials(study)
    assert len({len(detail["trials"]) for _, detail in polls}) > 1  # it showed the study growing
    assert len(reads) > 5 and {mode for _, mode in reads} == {"wal"}
    for log in (sweep_out, sweep_err, tmp_path / "dashboard.out", tmp_path / "dashboard.err"):
        text = log.read_text()
        assert "database is locked" not in text and "Traceback" not in text, (log.name, text[-2000:])


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_a_usage_error(make_study, port, capsys):
    from hpsearch import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["dashboard", str(make_study()), "--port", port])
    assert exited.value.code == 2
    assert "is not a port (0-65535)" in capsys.readouterr().err
