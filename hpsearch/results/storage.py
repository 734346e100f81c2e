"""Where a study lives: the default SQLite file beside the study file, any SQLAlchemy URL otherwise, or
grpc://HOST:PORT, an `hpsearch storage-server` in front of one of those (results/grpc_storage.py)."""

from __future__ import annotations

import os
import random
import sqlite3
import time
import warnings
from contextlib import closing
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from hpsearch.errors import NoDatabase, NotFound, SpecError, cannot_write, missing_study, redact
from hpsearch.spec import Spec
from hpsearch.spec.storage_url import grpc_address, url_problem

STORAGE_ENV = "HPSEARCH_STORAGE"


def given_storage(flag: str | None) -> tuple[str, str] | None:
    """The storage URL given outside the study file, with where it came from (what an error names):
    `--storage`, else `$HPSEARCH_STORAGE`; None when neither is given."""
    if flag:
        return flag, "--storage"
    env = os.environ.get(STORAGE_ENV)
    return (env, f"${STORAGE_ENV}") if env else None


def storage_url(spec: Spec, override: str | None = None, *, write: bool = False) -> str:
    """`--storage`, else `$HPSEARCH_STORAGE`, else the study file's `storage`, else
    `sqlite:///<study folder>/NAME.db`. With write=True (the verbs that write: validate checks for them), a
    SQLite file must also be one SQLite can create or write (`checked_url`)."""
    url, field = given_storage(override) or (
        spec.storage or f"sqlite:///{Path(spec.source).resolve().parent / spec.name}.db",
        "storage",
    )
    return checked_url(url, spec.source, field, write=write)


def checked_url(url: str, source, field: str, *, write: bool = False) -> str:
    """The URL if SQLAlchemy can parse it and its database driver is installed; else SpecError (exit 2).
    With write=True, a SQLite URL must name a file in an existing folder that SQLite can write."""
    problem = url_problem(url) or (sqlite_problem(url) if write else None)
    if problem is not None:
        raise SpecError(source, field, problem)
    return url


def sqlite_problem(url: str) -> str | None:
    """Why SQLite could not create or write the database file of a sqlite:/// URL, or None (SQLite creates
    the file, not its folder; other URLs are left to their server)."""
    path = sqlite_path(url)
    if path is None:
        return None
    problem = cannot_write(path, parents=False)
    if problem is None:
        return None
    return f"{redact(url)!r}: {problem} (SQLite needs a database file it can create or write, in an existing folder)"


def sqlite_path(url: str) -> Path | None:
    if grpc_address(url) is not None:
        return None
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


# How long a connection waits for another process's lock before "database is locked" (read at each open).
SQLITE_BUSY_TIMEOUT_S = 60


def _use_wal(dbapi_connection, connection_record) -> None:
    """Each new SQLite connection: WAL journal, so readers (status, the dashboard) never block the writer.

    WAL is stored in the file, so one switch serves every later opener; it needs the file on a local
    filesystem (its shared-memory index does not work over NFS and the like).
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _create_rdb_storage(url: str, options: dict, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDBStorage creates its tables when they are missing: workers that start at the same moment on an
    empty database (a batch of cluster jobs) race to create them, and the losers fail with "already
    exists" or a duplicate key. Those try again, once the winner's tables are there."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **options)
        except (ProgrammingError, IntegrityError, OperationalError) as exc:
            text = str(exc).lower()
            if attempt == attempts - 1 or not ("already exists" in text or "duplicate" in text or "unique" in text):
                raise
            time.sleep(random.uniform(0.1, 0.5) * (attempt + 1))
    raise AssertionError("unreachable")


def _check_study_database(path: Path) -> None:
    """A SQLite file to read studies from must exist and hold Optuna's tables: Optuna would otherwise
    create its tables in any SQLite file it is pointed at (another tool's database, a typo'd name)."""
    if not path.exists():
        raise NoDatabase(path)
    if path.is_dir():
        raise NotFound(f"{path} is a folder, not a study database")
    try:  # read-only: looking must not change the file
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='version_info'"
            ).fetchone()
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc):  # e.g. a read-only folder: leave the verdict to Optuna
            return
        found = None
    if found is None:
        raise NotFound(f"{path} is not an Optuna study database (it has no Optuna tables)")


def open_storage(url: str, *, create: bool, heartbeat=None, read_only: bool = False) -> optuna.storages.BaseStorage:
    """Open the storage; with create=False a missing SQLite file is an error, not a new empty file.

    Every hpsearch process opens storages here. A SQLite file gets a busy timeout and, unless opened
    `read_only` (the verbs that only read: status, export, report, simulate, list, dashboard, which must
    leave a database as they found it), WAL journal mode; other URLs are passed to Optuna untouched;
    grpc://HOST:PORT opens the proxy client (its server opened the database here). With a `HeartbeatSpec`
    (processes that run trials), running trials send heartbeats, and a trial whose heartbeat stopped for the
    grace period (a killed worker) is failed and re-queued, up to `max_retries` times.
    """
    if grpc_address(url) is not None:
        from hpsearch.results.grpc_storage import open_grpc  # grpcio is an optional extra

        return open_grpc(url, heartbeat)
    path = sqlite_path(url)
    if path is not None and (not create or read_only):
        _check_study_database(path)
    options: dict = {}
    if path is not None:  # wait for a lock instead of failing at once when another process holds it
        options["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    with warnings.catch_warnings():
        # Optuna marks heartbeats experimental; they are what recovers a killed worker's trial.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat is not None:
            options.update(
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=heartbeat.max_retries
                ),
            )
        storage = _create_rdb_storage(url, options)
    if path is None or read_only:
        return storage
    # RDBStorage connects (creating tables) while it is built, before a listener can be attached:
    # attach it now, drop the pooled connections so every later one is in WAL mode, and switch the file now.
    event.listen(storage.engine, "connect", _use_wal)
    storage.engine.dispose()
    with storage.engine.connect():
        pass
    return storage


def load_study(spec: Spec, url: str) -> optuna.Study:
    """The stored study of the spec's name, read only (NotFound listing the storage's studies if absent)."""
    storage = open_storage(url, create=False, read_only=True)
    names = optuna.study.get_all_study_names(storage)
    if spec.name not in names:
        raise missing_study(spec.name, url, names)
    return optuna.load_study(study_name=spec.name, storage=storage)
