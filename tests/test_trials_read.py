"""trials_read.get_trials gives exactly what Optuna's get_trials gives, on real SQLite studies."""

from __future__ import annotations

import math
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpsearch.results import trials_read
from hpsearch.results.report import collect as report

SPACE = {
    "learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
    "per_device_train_batch_size": CategoricalDistribution([8, 16, 32]),
    "optim": CategoricalDistribution(["adamw_torch", "sgd", None, True, 2.5]),
    "warmup_ratio": FloatDistribution(0.0, 0.2, step=0.05),
    "epochs": IntDistribution(1, 5),
    "hidden": IntDistribution(16, 256, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
}
ODD = [float("inf"), float("-inf"), float("nan"), 0.5, -0.0]


@pytest.fixture
def local_time(monkeypatch):
    """A timezone off UTC, so that a read that skips Optuna's UTC -> local conversion shows."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def build(url: str) -> None:
    """Two studies in one file; the first has trials of every state, odd values and nested attributes."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="main", storage=url, direction="maximize")
    study.set_user_attr("spec", {"objective": {"metric": "accuracy"}})
    for i in range(12):
        t = study.ask(SPACE)
        for step in range(i % 5 + 1):
            t.report(ODD[(i + step) % len(ODD)] if i % 3 == 0 else 0.1 * step + 0.01 * i, step * 10)
        curve = [
            {"step": 10 * s, "eval_accuracy": 0.5 + 0.01 * s, "nested": {"a": [1, None, {"b": "x"}]}} for s in (1, 2)
        ]
        t.set_user_attr("curve", curve)
        t.set_user_attr("steps_trained", 10 * (i % 5 + 1))
        t.set_user_attr("max_steps", 50)
        t.set_user_attr("train_samples_per_second", 100.0 + i)
        t.set_user_attr("note", None if i % 2 else "ünïcode ✓")
        t.storage.set_trial_system_attr(t._trial_id, "sys", {"i": i, "list": [1.5, "two"]})
        kind = i % 4
        if kind in (0, 1):
            study.tell(t, float("-inf") if i == 4 else 0.6 + 0.01 * i)
        elif kind == 2:
            study.tell(t, state=TrialState.PRUNED)
        else:
            t.set_user_attr("error", "RuntimeError: boom")
            study.tell(t, state=TrialState.FAIL)
    running = study.ask(SPACE)
    running.report(float("nan"), 3)
    running.set_user_attr("started", {"deep": {"er": [1, 2, 3]}})
    study.enqueue_trial({"learning_rate": 1e-4, "epochs": 2}, user_attrs={"queued": True})

    other = optuna.create_study(study_name="other", storage=url, directions=["minimize", "maximize"])
    for i in range(3):
        t = other.ask({"x": FloatDistribution(-1, 1)})
        t.storage.set_trial_intermediate_value(t._trial_id, 1, 1.0)  # report() is single-objective only
        t.set_user_attr("other", i)
        other.tell(t, [float(i), float("inf")])


def same(a, b, ordered: bool = True) -> bool:
    """Equal in type and value, recursively, with NaN equal to NaN and (where ORDERED) dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return (list(a) == list(b) if ordered else set(a) == set(b)) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def optuna_read(url: str, name: str):
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.fixture
def url(tmp_path, local_time) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    build(url)
    return url


@pytest.mark.parametrize("name", ["main", "other"])
def test_fast_read_equals_optunas(url, name, monkeypatch):
    expected = optuna_read(url, name)
    read, calls = trials_read._read, []
    monkeypatch.setattr(trials_read, "_read", lambda *args: calls.append(args) or read(*args))
    got = trials_read.get_trials(optuna.load_study(study_name=name, storage=url))
    assert len(calls) == 1, "the fast path was not taken"
    assert [t.number for t in got] == [t.number for t in expected]
    assert [t._trial_id for t in got] == [t._trial_id for t in expected]
    for a, b in zip(got, expected, strict=True):
        assert list(a.__dict__) == list(b.__dict__)
        for field in a.__dict__:
            # Optuna orders params (by param_id); attributes and intermediate values come in the database's order
            ordered = field in ("_params", "_distributions")
            assert same(getattr(a, field), getattr(b, field), ordered), (a.number, field)
    states = {t.state for t in got}
    if name == "main":
        assert states == {
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.WAITING,
        }
        assert any(math.isnan(v) for t in got for v in t.intermediate_values.values())


def test_fast_read_sees_later_changes_and_leaves_the_study_alone(url):
    study = optuna.load_study(study_name="main", storage=url)
    got = trials_read.get_trials(study)
    writer = optuna.load_study(study_name="main", storage=url)
    running = next(t for t in writer.get_trials() if t.state == TrialState.RUNNING)
    writer.tell(running.number, 0.9)
    writer.enqueue_trial({"epochs": 3})
    later = trials_read.get_trials(study)
    assert later[running.number].state == TrialState.COMPLETE and later[running.number].value == 0.9
    assert len(later) == len(got) + 1
    expected = study.get_trials(deepcopy=False)
    assert [(t.number, t.state, t.value) for t in later] == [(t.number, t.state, t.value) for t in expected]


def test_falls_back_off_rdb_and_on_unknown_schema(url, monkeypatch):
    memory = optuna.create_study()
    memory.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert trials_read.get_trials(memory) == memory.get_trials(deepcopy=False)

    def boom(*args):
        raise AssertionError("read the tables of an unverified schema")

    monkeypatch.setattr(trials_read, "_read", boom)
    monkeypatch.setattr(trials_read, "VERIFIED", set())
    got = trials_read.get_trials(optuna.load_study(study_name="main", storage=url))
    assert len(got) == 14


def test_report_is_the_same_either_way(url, monkeypatch):
    fast = report.collect(optuna.load_study(study_name="main", storage=url))
    monkeypatch.setattr(trials_read, "get_trials", lambda study: study.get_trials(deepcopy=False))
    slow = report.collect(optuna.load_study(study_name="main", storage=url))
    assert fast == slow
    assert fast.summary.states["PRUNED"] == 3 and fast.summary.states["RUNNING"] == 1
