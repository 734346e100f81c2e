"""SQLite settings of every hpsearch storage: a busy timeout and WAL, so readers never block the writer."""

import sqlite3
import time
from contextlib import closing

import optuna
import pytest
from sqlalchemy import text

from hpsearch.errors import NotFound
from hpsearch.results import storage


def journal_mode(path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_new_sqlite_storage_uses_wal_and_a_busy_timeout(tmp_path):
    path = tmp_path / "s.db"
    opened = storage.open_storage(f"sqlite:///{path}", create=True)
    assert journal_mode(path) == "wal"
    with opened.engine.connect() as connection:
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == storage.SQLITE_BUSY_TIMEOUT_S * 1000
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_an_existing_rollback_journal_database_is_switched_to_wal(tmp_path):
    path = tmp_path / "old.db"
    optuna.create_study(study_name="old", storage=f"sqlite:///{path}")  # plain Optuna: rollback journal
    assert journal_mode(path) == "delete"
    opened = storage.open_storage(f"sqlite:///{path}", create=False)
    assert journal_mode(path) == "wal"
    assert optuna.study.get_all_study_names(opened) == ["old"]


def test_missing_database_is_not_created(tmp_path):
    with pytest.raises(NotFound, match="no study database at"):
        storage.open_storage(f"sqlite:///{tmp_path / 'none.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["other tool", "not sqlite", "empty"])
def test_a_file_without_optuna_tables_is_refused_and_left_as_it_was(tmp_path, content):
    path = tmp_path / "other.db"
    if content == "other tool":
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE notes (body TEXT)")
            connection.commit()
    else:
        path.write_bytes(b"" if content == "empty" else b"plain text, not a database\n")
    before = path.read_bytes()
    with pytest.raises(NotFound, match="is not an Optuna study database"):
        storage.open_storage(f"sqlite:///{path}", create=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_reader_holding_a_snapshot_does_not_block_the_writer(tmp_path, monkeypatch):
    """optuna-dashboard issue 545's case: in rollback-journal mode this write fails with "database is locked"."""
    monkeypatch.setattr(storage, "SQLITE_BUSY_TIMEOUT_S", 1)
    path = tmp_path / "s.db"
    study = optuna.create_study(study_name="s", storage=storage.open_storage(f"sqlite:///{path}", create=True))
    reader = sqlite3.connect(path, timeout=1, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (0,)  # holds its read snapshot
        started = time.monotonic()
        for _ in range(3):
            trial = study.ask()
            trial.report(0.5, step=1)
            study.tell(trial, 1.0)
        assert time.monotonic() - started < 5
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (0,)  # still its snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (3,)
    finally:
        reader.close()


def test_other_urls_are_passed_to_optuna_untouched(monkeypatch):
    calls = []
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda *args, **kwargs: calls.append((args, kwargs)))
    storage.open_storage("postgresql://user:secret@db.example/studies", create=False)
    assert calls == [(("postgresql://user:secret@db.example/studies",), {})]


def test_workers_racing_to_create_the_tables_try_again(tmp_path, monkeypatch):
    """Cluster jobs starting together on an empty database: the losers of the CREATE TABLE race retry."""
    import optuna
    from sqlalchemy.exc import ProgrammingError

    from hpsearch.results import storage as storage_module

    real, calls = optuna.storages.RDBStorage, []

    def racing(url, **options):
        calls.append(url)
        if len(calls) == 1:
            raise ProgrammingError("CREATE TABLE studies", {}, Exception('relation "studies" already exists'))
        return real(url, **options)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(storage_module.time, "sleep", lambda s: None)
    opened = storage_module.open_storage(f"sqlite:///{tmp_path / 'race.db'}", create=True)
    assert len(calls) == 2 and opened.get_all_studies() == []

    def broken(url, **options):
        raise ProgrammingError("SELECT", {}, Exception("permission denied for table studies"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    with pytest.raises(ProgrammingError, match="permission denied"):  # other errors are not retried
        storage_module.open_storage(f"sqlite:///{tmp_path / 'race.db'}", create=True)


def test_a_read_only_open_leaves_the_journal_mode_and_the_file_as_they_were(tmp_path):
    path = tmp_path / "old.db"
    optuna.create_study(study_name="old", storage=f"sqlite:///{path}")
    before = path.read_bytes()
    opened = storage.open_storage(f"sqlite:///{path}", create=False, read_only=True)
    assert optuna.study.get_all_study_names(opened) == ["old"]
    assert journal_mode(path) == "delete" and path.read_bytes() == before


def test_a_url_sqlalchemy_cannot_parse_is_shown_as_given_without_its_password():
    from hpsearch.errors import redact

    assert redact("::::") == "::::"
    assert redact("postgresql://me:s3cret@db:notaport/x") == "postgresql://me:***@db:notaport/x"
    assert redact("postgresql://me:s3cret@db/x") == "postgresql://me:***@db/x"
