"""Studies on a real PostgreSQL server (tests/pgserver.py, started by tests/conftest.py)."""

from __future__ import annotations

import optuna
import pytest
from sqlalchemy.engine import make_url

from hpsearch.errors import redact
from hpsearch.results.storage import open_storage

pytestmark = pytest.mark.postgres

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def test_optuna_rdb_storage_on_postgres(postgres_db):
    storage = optuna.storages.RDBStorage(postgres_db)
    study = optuna.create_study(study_name="pg", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(quadratic, n_trials=3)

    again = optuna.load_study(study_name="pg", storage=optuna.storages.RDBStorage(postgres_db))
    trials = again.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert again.best_value == min(t.value for t in study.trials)


def test_redact_hides_the_password(postgres_url, postgres_server):
    shown = redact(postgres_url)
    assert postgres_server.password not in shown
    assert "***" in shown
    assert make_url(shown).port == postgres_server.port


def test_open_storage_creates_tables_on_postgres(postgres_db):
    storage = open_storage(postgres_db, create=True)
    study = optuna.create_study(study_name="via-hpsearch", storage=storage)
    study.optimize(quadratic, n_trials=2)
    # A second opener (another hpsearch process) sees the same study; create=False works too.
    reopened = open_storage(postgres_db, create=False)
    assert optuna.study.get_all_study_names(reopened) == ["via-hpsearch"]
    assert len(optuna.load_study(study_name="via-hpsearch", storage=reopened).trials) == 2


def test_wrong_password_is_refused(postgres_server):
    import psycopg

    wrong = postgres_server.url.replace(postgres_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10).close()


# Two tests in a row, each with a postgres_db of its own: the second must not see the first's study.
seen_urls: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_an_empty_database(postgres_db, round_):
    storage = optuna.storages.RDBStorage(postgres_db)
    assert optuna.study.get_all_study_names(storage) == []
    optuna.create_study(study_name="left-behind", storage=storage)
    assert postgres_db not in seen_urls
    seen_urls.append(postgres_db)
