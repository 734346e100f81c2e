"""`hpsearch storage-server` and grpc://HOST:PORT storages: a real proxy server in front of SQLite and PostgreSQL,
sweeps through it, its heartbeats, and the inputs it refuses."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.storages._heartbeat import is_heartbeat_enabled

from hpsearch import cli
from hpsearch.errors import redact
from hpsearch.results import grpc_storage, storage_server
from hpsearch.results.storage import open_storage
from hpsearch.spec.sections import HeartbeatSpec
from hpsearch.spec.storage_url import url_problem
from tests.pgserver import PASSWORD
from tests.test_dashboard import terminated_while_starting
from tests.test_workers import ENV, HPSEARCH, Live, accounted

States = optuna.trial.TrialState


@contextmanager
def served(url: str, log_dir: Path):
    """`hpsearch storage-server` in front of `url` on a free loopback port; yields its grpc:// URL.
    SIGTERM at the end must stop it with status 0."""
    server = Live([HPSEARCH, "storage-server", "--storage", url, "--port", "0"], log_dir)
    try:
        address = server.wait_for(r"^storage server: (grpc://127\.0\.0\.1:\d+)$", timeout=60).group(1)
        server.wait_for(r"^Ctrl-C to stop$")
        yield address
    finally:
        server.proc.terminate()
        assert server.finish(timeout=30) == 0, server.text
    assert "Traceback" not in server.text, server.text
    assert PASSWORD not in server.text and f"storage: {redact(url)}" in server.lines, server.text


@contextmanager
def in_process_server(url: str):
    """The same server in this process (for tests of the client side): yields its grpc:// URL."""
    server = storage_server.build(optuna.storages.get_storage(open_storage(url, create=True)), threads=4)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


def hpsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HPSEARCH, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=180)


# --- the URL and the server's inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, problem",
    [
        ("grpc://127.0.0.1:13000", None),
        ("grpc://[::1]:13000", None),
        ("grpc://storage-host", "'grpc://storage-host' needs a host and a port: grpc://HOST:PORT"),
        ("grpc://storage-host:0", "needs a host and a port"),
        ("grpc://storage-host:99999", "the port must be 1-65535"),
        ("grpc://storage-host:13000/tiny", "takes no user, database or options"),
        ("grpc://me:secret@storage-host:13000", "'grpc://***@storage-host:13000' takes no user"),
    ],
)
def test_a_grpc_url_is_host_and_port_only(url, problem):
    found = url_problem(url)
    assert found is None if problem is None else problem in found
    assert "secret" not in (found or "")


def test_a_study_file_with_a_grpc_storage_is_checked_like_any_other(make_study, capsys):
    path = make_study(storage="grpc://storage-host")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "storage: 'grpc://storage-host' needs a host and a port" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--storage", "grpc://127.0.0.1:13000"],
            "--storage: 'grpc://127.0.0.1:13000' is a storage server itself: give the database's URL (sqlite:///FILE, postgresql://...)",
        ),
        (["--storage", "nosuchdb://x"], "--storage: 'nosuchdb://x': SQLAlchemy knows no database 'nosuchdb'"),
        (["--storage", "sqlite:///{tmp}/s.db", "--threads", "0"], "--threads: must be at least 1, got 0"),
    ],
)
def test_the_server_refuses_bad_input_with_status_2_and_writes_nothing(args, message, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(["storage-server", *args, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: hpsearch storage-server: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_port_already_taken_exits_1_with_one_line(tmp_path, capsys):
    with in_process_server(f"sqlite:///{tmp_path / 's.db'}") as url:
        port = url.rpartition(":")[2]
        assert cli.main(["storage-server", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--port", port]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1


def test_sigterm_during_start_up_stops_the_server_as_ctrl_c_does(tmp_path):
    code, err = terminated_while_starting(
        ["storage-server", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--port", "0"], tmp_path
    )
    assert code == 130 and err.strip() == "interrupted", err  # a server has nothing to resume


def test_no_server_at_the_url_is_a_clear_error_not_a_hang(make_study, monkeypatch, capsys):
    monkeypatch.setattr(grpc_storage, "CONNECT_TIMEOUT_S", 1)
    path = make_study()
    started = time.monotonic()
    assert cli.main(["status", str(path), "--storage", "grpc://127.0.0.1:9"]) == 2
    assert time.monotonic() - started < 15
    assert capsys.readouterr().err == (
        "error: no storage server answers at grpc://127.0.0.1:9 (waited 1 s): start one next to the database"
        " with `hpsearch storage-server --storage DATABASE_URL --port 9`\n"
    )


def test_a_server_gone_mid_command_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    with in_process_server(f"sqlite:///{tmp_path / 's.db'}") as url:
        storage = open_storage(url, create=False)
        study = optuna.create_study(study_name="gone", storage=storage)
    monkeypatch.setitem(cli.VERBS, "status", lambda args: study.get_trials())
    assert cli.main(["status", "any.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the storage server failed or went away (UNAVAILABLE: failed to connect")
    assert err.count("\n") == 1


# --- heartbeats through the proxy --------------------------------------------------------------------


def test_a_trial_whose_heartbeat_stopped_is_failed_and_re_run_and_the_re_run_is_not_stale(tmp_path):
    """The proxy forwards no heartbeat table: a trial's heartbeat is its system attribute, written by its
    worker's heartbeat thread; another worker fails a stale one and queues its re-run (Optuna's callback)."""
    direct = f"sqlite:///{tmp_path / 's.db'}"
    beats = HeartbeatSpec(interval=1, grace_period=2, max_retries=1)
    with in_process_server(direct) as url:
        worker = open_storage(url, create=False, heartbeat=beats)
        assert is_heartbeat_enabled(worker)
        study = optuna.create_study(study_name="hb", storage=worker)
        beaten = threading.Event()

        def objective(trial):  # runs under Optuna's heartbeat thread, as every hpsearch trial does
            for _ in range(100):
                if grpc_storage.HEARTBEAT_ATTR in worker.get_trial(trial._trial_id).system_attrs:
                    beaten.set()
                    return 1.0
                time.sleep(0.05)
            return 0.0

        study.optimize(objective, n_trials=1)
        assert beaten.is_set() and study.trials[0].value == 1.0
        live, dead = study.ask(), study.ask()  # two running trials: one beats now, one beat long ago
        worker.record_heartbeat(live._trial_id)
        worker.set_trial_system_attr(dead._trial_id, grpc_storage.HEARTBEAT_ATTR, [dead._trial_id, time.time() - 60])
        other = optuna.load_study(study_name="hb", storage=open_storage(url, create=False, heartbeat=beats))
        optuna.storages.fail_stale_trials(other)
        states = {t.number: t.state for t in other.get_trials()}
        assert states == {0: States.COMPLETE, 1: States.RUNNING, 2: States.FAIL, 3: States.WAITING}
        rerun = other.get_trials()[3]
        assert rerun.params == dead.params and rerun.system_attrs["failed_trial"] == 2
        # The re-run carries its failed trial's old heartbeat (Optuna copies system attributes): not stale.
        assert grpc_storage.HEARTBEAT_ATTR in rerun.system_attrs
        assert study.ask().number == 3
        optuna.storages.fail_stale_trials(other)
        assert other.get_trials()[3].state == States.RUNNING
    # The server gone (restarting): a beat fails quietly and the heartbeat thread lives on to send the next.
    started = time.monotonic()
    worker.record_heartbeat(live._trial_id)
    assert time.monotonic() - started < 10
    # What the server wrote is in the database itself.
    direct_study = optuna.load_study(study_name="hb", storage=direct)
    assert [t.state for t in direct_study.trials][:3] == [States.COMPLETE, States.RUNNING, States.FAIL]


@pytest.mark.slow
def test_status_list_and_the_dashboard_read_through_the_proxy(make_study, tmp_path):
    """Readers that reach RDBStorage's engine elsewhere (the fast trial read) fall back to Optuna's own read."""
    from tests.test_dashboard import get, start_dashboard, stop

    direct = f"sqlite:///{tmp_path / 'tiny.db'}"
    path = make_study()
    study = optuna.create_study(study_name="tiny", storage=open_storage(direct, create=True), direction="maximize")
    for value in (0.3, 0.6):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)
        study.tell(trial, value)
    with served(direct, tmp_path) as url:
        through = hpsearch("status", str(path), "--storage", url, "--format", "json", cwd=tmp_path)
        directly = hpsearch("status", str(path), "--storage", direct, "--format", "json", cwd=tmp_path)
        assert through.returncode == 0 and directly.returncode == 0, through.stderr + directly.stderr
        assert json.loads(through.stdout) == json.loads(directly.stdout)
        listed = hpsearch("list", "--storage", url, "--format", "json", cwd=tmp_path)
        assert [row["study"] for row in json.loads(listed.stdout)] == ["tiny"], listed.stdout + listed.stderr
        proc, base = start_dashboard(url, tmp_path, "--study", "tiny")
        try:
            status, listing = get(f"{base}/api/studies")
            assert status == 200 and [s["study_name"] for s in listing["study_summaries"]] == ["tiny"]
            status, detail = get(f"{base}/api/studies/{listing['study_summaries'][0]['study_id']}")
            assert status == 200 and [t["values"] for t in detail["trials"]] == [[0.3], [0.6]]
        finally:
            assert stop(proc) == 0


# --- sweeps through the proxy -------------------------------------------------------------------------


@pytest.mark.slow
# PostgreSQL, what the proxy is for; SQLite behind it is read through the proxy by the test above.
@pytest.mark.parametrize("database", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_run_and_two_workers_share_a_study_through_the_proxy(database, make_study, tmp_path, request, capsys):
    """`run` and two `worker`s reach the database only through the server; `status`, `export` and `simulate`
    through it agree with the database read directly, and `report` writes its page through it."""
    direct = f"sqlite:///{tmp_path / 'db' / 'tiny.db'}" if database == "sqlite" else None
    if direct is None:
        direct = request.getfixturevalue("postgres_db")
    else:
        (tmp_path / "db").mkdir()
    path = make_study(budget={"n_trials": 4})
    with served(direct, tmp_path) as url:
        sweep = [Live([HPSEARCH, "run", str(path), "--storage", url, "--quiet"], tmp_path)]
        sweep += [Live([HPSEARCH, "worker", str(path), "--storage", url], tmp_path) for _ in range(2)]
        for live in sweep:
            assert live.finish(timeout=240) == 0, live.text
        for live in sweep[1:]:
            assert "joined study tiny: " in live.text and f"trials done in {url}" in live.text, live.text
        stored = optuna.load_study(study_name="tiny", storage=direct).trials
        done = accounted(stored)  # a trial one worker starts just past the budget is skipped, not counted
        assert len(done) == 4 and {t.state for t in done} == {States.COMPLETE}
        assert len({t.user_attrs["worker"] for t in done}) >= 2
        assert all(t.system_attrs[grpc_storage.HEARTBEAT_ATTR][0] == t._trial_id for t in done)
        views = {}
        capsys.readouterr()
        for name, storage in (("proxy", url), ("direct", direct)):
            assert cli.main(["status", str(path), "--storage", storage, "--format", "json"]) == 0
            status = json.loads(capsys.readouterr().out)
            out = tmp_path / name / "best.yaml"
            assert cli.main(["export", str(path), "--storage", storage, "--out", str(out)]) == 0
            exported = capsys.readouterr().out.splitlines()[0].partition(":")[0]
            assert cli.main(["simulate", str(path), "--storage", storage, "--format", "json"]) == 0
            simulated = json.loads(capsys.readouterr().out)
            assert cli.main(["report", str(path), "--storage", storage, "--out", str(tmp_path / name / "r.html")]) == 0
            assert capsys.readouterr().out == f"wrote {tmp_path / name / 'r.html'}\n"
            views[name] = (status, exported, out.read_text(), simulated)
        assert views["proxy"] == views["direct"]
        assert [row["state"] for row in views["proxy"][0]].count("COMPLETE") == 4
