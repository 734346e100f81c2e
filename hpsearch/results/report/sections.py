"""One figure's data each, Optuna's way: `get_*_info(...)` returns a plain NamedTuple (or None: nothing to
draw), the figures modules draw it. All of them read the rows and trials `collect` read once."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.results import progress_axis
from hpsearch.results.record import TrialAttr
from hpsearch.results.report.types import (
    BATCH_SIZE,
    LEARNING_RATE,
    OPTIM,
    Curve,
    Curves,
    Gaps,
    Groups,
    Heatmap,
    History,
    Importance,
    Lines,
    Pareto,
    Points,
    Summary,
    TrialRow,
    finite,
    order,
)

MAX_CURVES, BEST_CURVES, CURVE_SEED = 100, 10, 0  # curves drawn at most: the best ones, then a seeded sample
MAX_LINES, BEST_LINES = 500, 50  # parallel-coordinate lines at most, the same way (Optuna draws one trace each)
MIN_IMPORTANCE_TRIALS = 5  # completed trials below which PED-ANOVA's answer means nothing
LR_BINS = 6  # learning-rate bins of the heatmap (log-spaced)


def pick(direction: str) -> Callable:
    return max if direction == "maximize" else min


def sample(
    candidates: list, at_most: int, n_best: int, value: Callable, direction: str
) -> tuple[list, int, int | None]:
    """At most AT_MOST of CANDIDATES: the N_BEST best by VALUE (None: not ranked), then a seeded sample of
    the rest; returns (chosen, how many were chosen for being best, the seed), all of them below the cap."""
    if len(candidates) <= at_most:
        return candidates, 0, None
    ranked = [c for c in candidates if value(c) is not None]
    top = sorted(ranked, key=value, reverse=direction == "maximize")[: min(n_best, at_most)]
    picked = {id(c) for c in top}
    rest = [c for c in candidates if id(c) not in picked]
    return top + random.Random(CURVE_SEED).sample(rest, at_most - len(top)), len(top), CURVE_SEED


def get_history_info(done: list[TrialRow]) -> History | None:
    return History(tuple(r.number for r in done), tuple(r.value for r in done)) if done else None


def get_learning_rate_info(rows: list[TrialRow]) -> Points | None:
    pts = [r for r in rows if r.reached is not None and finite(r.params.get(LEARNING_RATE))]
    pts = [r for r in pts if r.state in ("COMPLETE", "PRUNED") and r.params[LEARNING_RATE] > 0]
    if not pts:
        return None
    return Points(
        numbers=tuple(r.number for r in pts),
        learning_rates=tuple(r.params[LEARNING_RATE] for r in pts),
        values=tuple(r.reached for r in pts),
        optims=tuple(r.params.get(OPTIM) for r in pts),
        batch_sizes=tuple(r.params.get(BATCH_SIZE) for r in pts),
        pruned=tuple(r.state == "PRUNED" for r in pts),
    )


def get_groups_info(rows: list[TrialRow], name: str) -> Groups | None:
    finished = [r for r in rows if r.state in ("COMPLETE", "PRUNED") and name in r.params]
    choices = order(r.params[name] for r in finished)
    values: dict[Any, list[float]] = {c: [] for c in choices}
    throughput: dict[Any, list[float]] = {c: [] for c in choices}
    for r in finished:
        if r.value is not None:
            values[r.params[name]].append(r.value)
        if r.samples_per_second is not None:
            throughput[r.params[name]].append(r.samples_per_second)
    if not any(values.values()):
        return None
    return Groups(
        tuple(choices), tuple(tuple(values[c]) for c in choices), tuple(tuple(throughput[c]) for c in choices)
    )


def get_heatmap_info(done: list[TrialRow], direction: str) -> Heatmap | None:
    cells = [(r.params.get(LEARNING_RATE), r.params.get(BATCH_SIZE), r.value) for r in done if BATCH_SIZE in r.params]
    cells = [c for c in cells if finite(c[0]) and c[0] > 0]
    if not cells:
        return None
    low, high = math.log10(min(c[0] for c in cells)), math.log10(max(c[0] for c in cells))
    n = min(LR_BINS, len({c[0] for c in cells}))
    width = (high - low) / n or 1.0
    sizes = order(c[1] for c in cells)
    best: list[list[float | None]] = [[None] * n for _ in sizes]
    counts = [[0] * n for _ in sizes]
    for lr, size, value in cells:
        i, j = sizes.index(size), min(int((math.log10(lr) - low) / width), n - 1)
        counts[i][j] += 1
        best[i][j] = value if best[i][j] is None else pick(direction)(best[i][j], value)
    edges = tuple(10 ** (low + k * width) for k in range(n + 1))
    return Heatmap(edges, tuple(sizes), tuple(map(tuple, best)), tuple(map(tuple, counts)))


def curve(t: FrozenTrial, key: str, axis: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The objective on the study's axis: Optuna's intermediate values, else the `curve` user attribute's points
    (a study with a cost objective reports none)."""
    if t.intermediate_values:
        points = sorted((s, v) for s, v in t.intermediate_values.items() if finite(v))
    else:
        at = progress_axis.curve_key(axis)
        points = [(p[at], p[key]) for p in progress_axis.curve(t) if finite(p.get(key)) and isinstance(p.get(at), int)]
    return tuple(s for s, _ in points), tuple(v for _, v in points)


def _objective(t: FrozenTrial) -> float | None:
    return t.values[0] if t.state == TrialState.COMPLETE and t.values and finite(t.values[0]) else None


def get_curves_info(trials: list[FrozenTrial], key: str, s: Summary) -> Curves | None:
    """At most MAX_CURVES curves: the BEST_CURVES best completed trials, then a seeded sample of the rest."""
    have = [t for t in trials if t.intermediate_values or t.user_attrs.get(TrialAttr.CURVE)]
    if not have:
        return None
    chosen, n_best, seed = sample(have, MAX_CURVES, BEST_CURVES, _objective, s.direction)
    best = {s.best.number} if s.best else {f.number for f in s.front}  # with a cost: the front's curves
    curves = [Curve(t.number, t.state.name, *curve(t, key, s.axis), t.number in best) for t in chosen]
    curves = sorted((c for c in curves if c.points), key=lambda c: c.number)
    return Curves(tuple(curves), len(have), n_best, seed)


def get_overfitting_info(done: list[TrialRow]) -> Gaps | None:
    with_gap = [r for r in done if r.train_eval_gap is not None]
    if not with_gap:
        return None
    return Gaps(
        tuple(r.number for r in with_gap), tuple(r.train_eval_gap for r in with_gap), tuple(r.value for r in with_gap)
    )


def get_parallel_info(done: list[TrialRow], direction: str) -> Lines | None:
    """The completed trials with a searched param, capped at MAX_LINES lines."""
    with_params = [r for r in done if r.params]
    if not with_params:
        return None
    chosen, n_best, seed = sample(with_params, MAX_LINES, BEST_LINES, lambda r: r.value, direction)
    return Lines(tuple(sorted(r.number for r in chosen)), len(with_params), n_best, seed)


def get_pareto_info(done: list[TrialRow], s: Summary) -> Pareto | None:
    pts = [r for r in done if r.cost is not None]
    if not pts:
        return None
    on = {f.number for f in s.front}
    return Pareto(
        cost=s.cost,
        numbers=tuple(r.number for r in pts),
        values=tuple(r.value for r in pts),
        costs=tuple(r.cost for r in pts),
        on_front=tuple(r.number in on for r in pts),
        front=tuple(f.number for f in s.front),
    )


def get_importance_info(shown: optuna.Study, searched: tuple[str, ...]) -> tuple[Importance | None, str | None]:
    """PED-ANOVA's importances over the completed trials of SHOWN (collect's in-memory study), or why not."""
    done = shown.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(searched) < 2:
        return None, f"Importance compares parameters; this study searched {len(searched)}."
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return (
            None,
            f"Too few completed trials for parameter importance: {len(done)}, it needs {MIN_IMPORTANCE_TRIALS}.",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # With a cost objective, the importance for the quality objective, as in the other figures.
            target = (lambda t: t.values[0]) if len(shown.directions) > 1 else None
            result = optuna.importance.get_param_importances(shown, target=target)
        except Exception as exc:  # the evaluator's limits must not cost the user the whole report
            return None, f"Optuna could not compute importances: {type(exc).__name__}: {exc}"
    equal = [w for w in caught if "will be equal" in str(w.message)]
    if equal:
        return None, f"Importances would say nothing here: {equal[0].message}"
    return Importance(tuple(result), tuple(result.values())), None
