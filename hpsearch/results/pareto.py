"""The Pareto front of quality against cost: the one computation that status, export, warm start and the
report use, on the trials of a study or on rows already read from it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import optuna


class _Numbered(Protocol):
    number: int


T = TypeVar("T", bound=_Numbered)


def front(points: Iterable[T], direction: str, objectives: Callable[[T], tuple[float, float]]) -> list[T]:
    """The points no other point beats on both objectives (quality in `direction`, cost minimized), best
    quality first; ties go to the lower cost, then the lower number. Points with equal values are all on
    it, as in Optuna's `study.best_trials`. In that order, a point is on the front when it costs less than
    every point of better quality."""
    sign = -1 if direction == "maximize" else 1
    ranked = sorted(points, key=lambda p: (sign * objectives(p)[0], objectives(p)[1], p.number))
    out: list[T] = []
    for point in ranked:
        quality, cost = objectives(point)
        if not out or cost < objectives(out[-1])[1] or (quality, cost) == objectives(out[-1]):
            out.append(point)
    return out


def pareto_front(
    study: optuna.Study, trials: Iterable[optuna.trial.FrozenTrial] | None = None
) -> list[optuna.trial.FrozenTrial]:
    """A study's Pareto-optimal completed trials (of `trials`, read already, or of the study), best quality
    first. A single-objective study's front is its best trial (the lowest number among equals)."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.values]
    direction = study.directions[0].name.lower()
    if len(study.directions) == 1:
        return front(done, direction, lambda t: (t.values[0], 0.0))[:1]
    return front(done, direction, lambda t: (t.values[0], t.values[1]))
