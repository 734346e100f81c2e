"""The data of a study's report: `collect(study) -> ReportData`, plain data tested directly.

`report_html.render(data)` draws it; `report_html.write(study, path)` does both."""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.results import trials_read

LEARNING_RATE, BATCH_SIZE, OPTIM = "learning_rate", "per_device_train_batch_size", "optim"
MODEL = "model"  # search.model: the model itself as a choice
MAX_CURVES, BEST_CURVES, CURVE_SEED = 100, 10, 0  # curves drawn at most: the best ones, then a seeded sample
MIN_IMPORTANCE_TRIALS = 5  # completed trials below which PED-ANOVA's answer means nothing
LR_BINS = 6  # learning-rate bins of the heatmap (log-spaced)
TOP_FRACTION, TOP_AT_LEAST = 0.1, 3  # "what won" looks at the best tenth of the completed trials, 3 at least


class Best(NamedTuple):
    number: int
    value: float
    params: dict[str, Any]


class FrontTrial(NamedTuple):
    """A Pareto-optimal trial of a study with a cost objective."""

    number: int
    value: float
    cost: float
    params: dict[str, Any]


class Summary(NamedTuple):
    study_name: str
    metric: str  # the objective's name: the spec's objective.metric, else "objective"
    direction: str  # "maximize" | "minimize"
    states: dict[str, int]  # trials by state: COMPLETE, PRUNED, FAIL always, others (RUNNING, SKIPPED) when present
    best: Best | None
    compute_seconds: float  # sum over trials of train_seconds (else wall_time_s, else duration)
    steps_trained: int
    steps_saved: int  # sum over pruned trials of max_steps - steps_trained
    seconds_saved: float  # the same at each pruned trial's own seconds per step: an estimate
    wall_time_s: float | None  # first start to last completion
    searched: tuple[str, ...]  # every param that some trial sampled, sorted
    cost: str | None = None  # the cost objective's name (objective.cost); then `best` is None
    front: tuple[FrontTrial, ...] = ()  # with a cost: the Pareto-optimal trials, best quality first


class TrialRow(NamedTuple):
    number: int
    state: str
    value: float | None  # objective of a COMPLETE trial
    reached: float | None  # that, or an unfinished trial's last intermediate value
    duration_s: float | None
    pruned_at: int | None
    steps_trained: int | None
    max_steps: int | None
    samples_per_second: float | None
    train_seconds: float | None
    params: dict[str, Any]
    error: str | None
    train_eval_gap: float | None = None  # eval_loss - train_loss at the last evaluation
    cost: float | None = None  # a COMPLETE trial's cost, in a study with a cost objective


class Winner(NamedTuple):
    param: str
    best: Any  # the best trial's value
    n_top: int  # completed trials in the best TOP_FRACTION
    top_range: tuple[float, float] | None  # numeric params: range among the top trials
    top_counts: dict[Any, int] | None  # categorical params: choices among the top trials, most frequent first


class History(NamedTuple):
    numbers: tuple[int, ...]
    values: tuple[float, ...]
    best_so_far: tuple[float, ...]


class Points(NamedTuple):
    """Trials with a learning rate and a value: complete at their value, pruned at their last one."""

    numbers: tuple[int, ...]
    learning_rates: tuple[float, ...]
    values: tuple[float, ...]
    optims: tuple[Any, ...]  # None where optim was not searched
    batch_sizes: tuple[Any, ...]
    pruned: tuple[bool, ...]


class Groups(NamedTuple):
    """Per choice of one param: completed trials' objective and finished trials' samples per second."""

    choices: tuple[Any, ...]
    values: tuple[tuple[float, ...], ...]
    throughput: tuple[tuple[float, ...], ...]


class Heatmap(NamedTuple):
    lr_edges: tuple[float, ...]  # log-spaced bin edges
    batch_sizes: tuple[Any, ...]
    best: tuple[tuple[float | None, ...], ...]  # [batch size][lr bin] best objective, None for an empty cell
    counts: tuple[tuple[int, ...], ...]


class Curve(NamedTuple):
    number: int
    state: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    is_best: bool


class Curves(NamedTuple):
    curves: tuple[Curve, ...]
    total: int  # trials that have a curve
    n_best: int  # curves chosen for being the best (0 when every curve is drawn)
    seed: int | None  # seed of the sample of the rest; None when every curve is drawn


class Gaps(NamedTuple):
    """Completed trials with both losses at their last evaluation: the train/eval gap and the objective."""

    numbers: tuple[int, ...]
    gaps: tuple[float, ...]  # eval_loss - train_loss; above 0, the model fits its training data better
    values: tuple[float, ...]


class Pareto(NamedTuple):
    """Quality against cost for every completed trial of a study with a cost objective."""

    cost: str  # the cost's name, e.g. device_seconds
    numbers: tuple[int, ...]
    values: tuple[float, ...]  # the quality objective
    costs: tuple[float, ...]
    on_front: tuple[bool, ...]
    front: tuple[int, ...]  # the Pareto-optimal trials' numbers, best quality first


class Importance(NamedTuple):
    params: tuple[str, ...]  # most important first
    importances: tuple[float, ...]  # sum to 1


class Axis(NamedTuple):
    label: str
    values: tuple[float, ...]
    tickvals: tuple[float, ...] | None = None  # categorical choices as indices, log params as decades
    ticktext: tuple[str, ...] | None = None


class Parallel(NamedTuple):
    axes: tuple[Axis, ...]  # searched params, then the objective
    values: tuple[float, ...]  # the objective, which colours the lines


FIGURES = (
    "history",
    "learning_rate",
    "batch_size",
    "optimizer",
    "heatmap",
    "curves",
    "overfitting",
    "importance",
    "parallel",
)


@dataclass(frozen=True)
class ReportData:
    summary: Summary
    winners: tuple[Winner, ...]
    trials: tuple[TrialRow, ...]
    history: History | None = None
    learning_rate: Points | None = None
    batch_size: Groups | None = None
    optimizer: Groups | None = None
    heatmap: Heatmap | None = None
    curves: Curves | None = None
    overfitting: Gaps | None = None
    importance: Importance | None = None
    parallel: Parallel | None = None
    pareto: Pareto | None = None  # only in a study with a cost objective; drawn first
    model: Groups | None = None  # only in a study that searches the model (search.model)
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it has no figure

    @property
    def figures(self) -> tuple[str, ...]:
        """The sections drawn as a figure, in the report's order."""
        return tuple(name for name in self.sections if getattr(self, name) is not None)

    @property
    def sections(self) -> tuple[str, ...]:
        """The figure sections of the report: FIGURES, after the Pareto front in a study with a cost,
        with the objective and throughput per model after the optimizer's in one that searches the model."""
        figures = ("pareto", *FIGURES) if self.summary.cost is not None else FIGURES
        if MODEL not in self.summary.searched:
            return figures
        at = figures.index("optimizer") + 1
        return (*figures[:at], "model", *figures[at:])


# --------------------------------------------------------------------------------------------
# Collect


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def order(values) -> list:
    """Distinct values sorted: numbers first, then anything else by its text (a categorical may mix types)."""
    return sorted(set(values), key=lambda v: (0, v, "") if _finite(v) else (1, 0, str(v)))


def _pick(direction: str):
    return max if direction == "maximize" else min


def _curve(t: FrozenTrial, key: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The objective by step: Optuna's intermediate values, else the `curve` user attribute."""
    if t.intermediate_values:
        points = sorted((s, v) for s, v in t.intermediate_values.items() if _finite(v))
    else:
        points = [(p["step"], p[key]) for p in t.user_attrs.get("curve") or () if _finite(p.get(key))]
    return tuple(s for s, _ in points), tuple(v for _, v in points)


def _gap(a: dict[str, Any]) -> float | None:
    """The recorded train_eval_gap; for trials recorded without it, from the last curve point."""
    if _finite(a.get("train_eval_gap")):
        return float(a["train_eval_gap"])
    last = (a.get("curve") or [None])[-1]
    if not isinstance(last, dict) or not (_finite(last.get("eval_loss")) and _finite(last.get("train_loss"))):
        return None
    return float(last["eval_loss"]) - float(last["train_loss"])


def _row(t: FrozenTrial, key: str) -> TrialRow:
    a = t.user_attrs
    values = t.values if t.state == TrialState.COMPLETE and t.values else [None, None]
    value = values[0] if _finite(values[0]) else None  # with a cost, the figures show the quality objective
    cost = values[1] if len(values) > 1 and value is not None and _finite(values[1]) else None
    reached = value
    if value is None and t.state != TrialState.COMPLETE:
        reached = next(iter(_curve(t, key)[1][-1:]), None)
    duration = t.duration.total_seconds() if t.duration is not None else None
    spent = next((a[k] for k in ("train_seconds", "wall_time_s") if _finite(a.get(k))), duration)
    return TrialRow(
        number=t.number,
        state="SKIPPED" if a.get("skipped") else t.state.name,  # stored as pruned, but it never trained
        value=value,
        reached=reached,
        duration_s=duration,
        pruned_at=a.get("steps_trained", t.last_step) if t.state == TrialState.PRUNED else None,
        steps_trained=a.get("steps_trained"),
        max_steps=a.get("max_steps"),
        samples_per_second=a["train_samples_per_second"] if _finite(a.get("train_samples_per_second")) else None,
        train_seconds=spent,
        params=dict(t.params),
        error=a.get("error") or (a.get("prune_reason") if a.get("prune_reason") not in (None, "pruner") else None),
        train_eval_gap=_gap(a),
        cost=cost,
    )


def _front(done: list[TrialRow], direction: str) -> list[TrialRow]:
    """The rows no other row beats on both objectives (quality in `direction`, cost minimized), best
    quality first: Optuna's `study.best_trials`, taken from the rows already read rather than the storage.
    In that order, a row is on the front when it costs less than every row of better quality."""
    sign = -1 if direction == "maximize" else 1
    front: list[TrialRow] = []
    for r in sorted(done, key=lambda r: (sign * r.value, r.cost, r.number)):
        if not front or r.cost < front[-1].cost or (r.value, r.cost) == (front[-1].value, front[-1].cost):
            front.append(r)
    return front


def _summary(
    study: optuna.Study, trials: list[FrozenTrial], rows: list[TrialRow], metric: str, cost: str | None
) -> Summary:
    direction = study.directions[0].name.lower()
    states = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
    done = [r for r in rows if r.value is not None]
    best = _pick(direction)(done, key=lambda r: r.value) if done and cost is None else None
    front = _front([r for r in done if r.cost is not None], direction) if cost is not None else []
    steps_saved, seconds_saved = 0, 0.0
    for r in rows:
        if r.state == "PRUNED" and isinstance(r.max_steps, int) and isinstance(r.steps_trained, int):
            left = max(r.max_steps - r.steps_trained, 0)
            steps_saved += left
            if r.train_seconds and r.steps_trained:
                seconds_saved += left * r.train_seconds / r.steps_trained
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return Summary(
        study_name=study.study_name,
        metric=metric,
        direction=direction,
        states=states,
        best=Best(best.number, best.value, best.params) if best else None,
        compute_seconds=sum(r.train_seconds or 0.0 for r in rows),
        steps_trained=sum(r.steps_trained for r in rows if isinstance(r.steps_trained, int)),
        steps_saved=steps_saved,
        seconds_saved=seconds_saved,
        wall_time_s=(max(ends) - min(starts)).total_seconds() if starts and ends else None,
        searched=tuple(sorted({name for t in trials for name in t.distributions})),
        cost=cost,
        front=tuple(FrontTrial(r.number, r.value, r.cost, r.params) for r in front),
    )


def _pareto(done: list[TrialRow], s: Summary) -> Pareto | None:
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


def _winners(done: list[TrialRow], s: Summary, categorical: set[str]) -> tuple[Winner, ...]:
    if not done:
        return ()
    sign = -1 if s.direction == "maximize" else 1  # ties: the cheaper first (with a cost), so the best is on the front
    ranked = sorted(done, key=lambda r: (sign * r.value, r.cost or 0.0))
    top = ranked[: max(math.ceil(len(ranked) * TOP_FRACTION), min(TOP_AT_LEAST, len(ranked)))]
    out = []
    for name in s.searched:
        values = [r.params[name] for r in top if name in r.params]
        best = ranked[0].params.get(name)
        if name in categorical or not all(_finite(v) for v in values):
            counts = {v: values.count(v) for v in sorted(order(values), key=values.count, reverse=True)}
            out.append(Winner(name, best, len(top), None, counts))
        else:
            out.append(Winner(name, best, len(top), (min(values), max(values)) if values else None, None))
    return tuple(out)


def _history(done: list[TrialRow], direction: str) -> History | None:
    best: list[float] = []
    for r in done:
        best.append(r.value if not best else _pick(direction)(best[-1], r.value))
    return History(tuple(r.number for r in done), tuple(r.value for r in done), tuple(best)) if done else None


def _points(rows: list[TrialRow]) -> Points | None:
    pts = [r for r in rows if r.reached is not None and _finite(r.params.get(LEARNING_RATE))]
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


def _groups(rows: list[TrialRow], name: str) -> Groups | None:
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


def _heatmap(done: list[TrialRow], direction: str) -> Heatmap | None:
    cells = [(r.params.get(LEARNING_RATE), r.params.get(BATCH_SIZE), r.value) for r in done if BATCH_SIZE in r.params]
    cells = [c for c in cells if _finite(c[0]) and c[0] > 0]
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
        best[i][j] = value if best[i][j] is None else _pick(direction)(best[i][j], value)
    edges = tuple(10 ** (low + k * width) for k in range(n + 1))
    return Heatmap(edges, tuple(sizes), tuple(map(tuple, best)), tuple(map(tuple, counts)))


def _curves(trials: list[FrozenTrial], key: str, s: Summary) -> Curves | None:
    """At most MAX_CURVES curves: the BEST_CURVES best completed trials, then a seeded sample of the rest."""
    have = [t for t in trials if t.intermediate_values or t.user_attrs.get("curve")]
    if not have:
        return None
    chosen, n_best, seed = have, 0, None
    if len(have) > MAX_CURVES:
        done = [t for t in have if t.state == TrialState.COMPLETE and t.values and _finite(t.values[0])]
        top = sorted(done, key=lambda t: t.values[0], reverse=s.direction == "maximize")[:BEST_CURVES]
        picked = {t.number for t in top}
        rest = [t for t in have if t.number not in picked]
        chosen = top + random.Random(CURVE_SEED).sample(rest, MAX_CURVES - len(top))
        n_best, seed = len(top), CURVE_SEED
    best = {s.best.number} if s.best else {f.number for f in s.front}  # with a cost: the front's curves
    curves = [Curve(t.number, t.state.name, *_curve(t, key), t.number in best) for t in chosen]
    curves = sorted((c for c in curves if c.steps), key=lambda c: c.number)
    return Curves(tuple(curves), len(have), n_best, seed)


def _gaps(done: list[TrialRow]) -> Gaps | None:
    with_gap = [r for r in done if r.train_eval_gap is not None]
    if not with_gap:
        return None
    return Gaps(
        tuple(r.number for r in with_gap), tuple(r.train_eval_gap for r in with_gap), tuple(r.value for r in with_gap)
    )


def _importance(
    study: optuna.Study, trials: list[FrozenTrial], searched: tuple[str, ...]
) -> tuple[Importance | None, str | None]:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(searched) < 2:
        return None, f"Importance compares parameters; this study searched {len(searched)}."
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return (
            None,
            f"Too few completed trials for parameter importance: {len(done)}, it needs {MIN_IMPORTANCE_TRIALS}.",
        )
    # The evaluator reads trials through a study: give it an in-memory one holding the trials already
    # read, rather than have it read the whole storage again.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        copy = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    copy.add_trials(done)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # With a cost objective, the importance for the quality objective, as in the other figures.
            target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
            result = optuna.importance.get_param_importances(copy, target=target)
        except Exception as exc:  # the evaluator's limits must not cost the user the whole report
            return None, f"Optuna could not compute importances: {type(exc).__name__}: {exc}"
    equal = [w for w in caught if "will be equal" in str(w.message)]
    if equal:
        return None, f"Importances would say nothing here: {equal[0].message}"
    return Importance(tuple(result), tuple(result.values())), None


def _parallel(done: list[TrialRow], trials: list[FrozenTrial], metric: str) -> Parallel | None:
    dists = {name: d for t in trials for name, d in t.distributions.items()}
    rows = [r for r in done if all(name in r.params for name in dists)]
    if not rows or not dists:
        return None
    axes = []
    for name, dist in sorted(dists.items()):
        column = [r.params[name] for r in rows]
        if isinstance(dist, CategoricalDistribution):
            choices = list(dist.choices)
            ticks = tuple(float(i) for i in range(len(choices)))
            axes.append(Axis(name, tuple(float(choices.index(v)) for v in column), ticks, tuple(map(str, choices))))
        elif getattr(dist, "log", False):
            decades = range(math.floor(math.log10(dist.low)), math.ceil(math.log10(dist.high)) + 1)
            values = tuple(math.log10(v) for v in column)
            axes.append(Axis(f"{name} (log)", values, tuple(map(float, decades)), tuple(f"1e{d}" for d in decades)))
        else:
            axes.append(Axis(name, tuple(float(v) for v in column)))
    values = tuple(r.value for r in rows)
    return Parallel((*axes, Axis(metric, values)), values)


def _absent(names: tuple[str, ...], searched: tuple[str, ...], fixed: dict) -> str | None:
    """Why a figure over NAMES is left out: which of them the study fixed or did not search."""
    said = [
        f"{n} was fixed at {fixed[n]}" if n in fixed else f"{n} was not searched" for n in names if n not in searched
    ]
    return "; ".join(said) + " in this study, so there is no figure." if said else None


def collect(study: optuna.Study) -> ReportData:
    """Everything the report shows, as plain data, from one read of the study's trials."""
    trials = trials_read.get_trials(study)  # what study.get_trials(deepcopy=False) gives, faster
    spec = study.user_attrs.get("spec") or {}
    metric = (spec.get("objective") or {}).get("metric") or "objective"
    cost = ((spec.get("objective") or {}).get("cost") or "cost") if len(study.directions) > 1 else None
    key = f"eval_{metric}"
    rows = [_row(t, key) for t in trials]
    s = _summary(study, trials, rows, metric, cost)
    done = [r for r in rows if r.value is not None]
    categorical = {n for t in trials for n, d in t.distributions.items() if isinstance(d, CategoricalDistribution)}
    fixed = spec.get("train") or {}
    notes: dict[str, str] = {}
    if not trials:
        notes["summary"] = "This study has no trials yet."
    elif not done:
        states = ", ".join(f"{n} {state.lower()}" for state, n in s.states.items() if n)
        notes["summary"] = f"No trial completed ({states}), so there is no best trial yet."
    # section -> (params it needs, how to build it, what to say when it comes back empty)
    builders = {
        "history": ((), lambda: _history(done, s.direction), "No completed trial to plot."),
        "learning_rate": ((LEARNING_RATE,), lambda: _points(rows), "No trial reached a value to plot."),
        "batch_size": ((BATCH_SIZE,), lambda: _groups(rows, BATCH_SIZE), "No completed trial to plot."),
        "optimizer": ((OPTIM,), lambda: _groups(rows, OPTIM), "No completed trial to plot."),
        "heatmap": ((LEARNING_RATE, BATCH_SIZE), lambda: _heatmap(done, s.direction), "No completed trial to plot."),
        "curves": ((), lambda: _curves(trials, key, s), "No trial reported an evaluation."),
        "overfitting": ((), lambda: _gaps(done), "No completed trial has both a train and an eval loss at its end."),
        "parallel": ((), lambda: _parallel(done, trials, metric), "No completed trial to plot."),
    }
    if cost is not None:
        builders["pareto"] = ((), lambda: _pareto(done, s), "No completed trial to plot.")
    if MODEL in s.searched:
        builders["model"] = ((MODEL,), lambda: _groups(rows, MODEL), "No completed trial to plot.")
    sections: dict[str, Any] = {}
    for name, (needs, build, empty) in builders.items():
        why = _absent(needs, s.searched, fixed)
        sections[name] = None if why else build()
        if sections[name] is None:
            notes[name] = why or empty
    sections["importance"], why = _importance(study, trials, s.searched)
    if why:
        notes["importance"] = why
    return ReportData(s, _winners(done, s, categorical), tuple(rows), notes=notes, **sections)
