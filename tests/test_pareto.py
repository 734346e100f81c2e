"""The one Pareto front: the same trials as Optuna's `best_trials`, best quality first."""

import random

import optuna
import pytest

from hpsearch.results import pareto


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_front_is_optunas_best_trials_best_quality_first(direction):
    rng = random.Random(7)
    study = optuna.create_study(directions=[direction, "minimize"])
    for _ in range(60):  # a coarse grid of values, so ties and equal points occur
        study.add_trial(optuna.trial.create_trial(values=[rng.randint(0, 9) / 10, rng.randint(1, 8)]))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    front = pareto.pareto_front(study)
    assert sorted(t.number for t in front) == sorted(t.number for t in study.best_trials)
    sign = -1 if direction == "maximize" else 1
    keys = [(sign * t.values[0], t.values[1], t.number) for t in front]
    assert keys == sorted(keys)


def test_a_single_objective_front_is_the_best_trial():
    study = optuna.create_study(direction="maximize")
    for value in (0.2, 0.9, 0.5, 0.9):
        study.add_trial(optuna.trial.create_trial(value=value))
    assert [t.number for t in pareto.pareto_front(study)] == [1]
    assert pareto.pareto_front(optuna.create_study()) == []


def test_front_works_on_rows_already_read():
    class Row:
        def __init__(self, number, value, cost):
            self.number, self.value, self.cost = number, value, cost

    rows = [Row(0, 0.5, 3.0), Row(1, 0.7, 5.0), Row(2, 0.6, 6.0), Row(3, 0.7, 5.0)]
    front = pareto.front(rows, "maximize", lambda r: (r.value, r.cost))
    assert [r.number for r in front] == [1, 3, 0]
