"""The data of a study's report: `collect(study) -> ReportData`, plain data tested directly, from one read
of the study's trials. `html.render(data)` draws it; `html.write(study, path)` does both."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.results import confirmation, pareto, progress_axis, trials_read
from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr
from hpsearch.results.report import sections
from hpsearch.results.report.labels import escape, ticks
from hpsearch.results.report.types import (
    BATCH_SIZE,
    LEARNING_RATE,
    MODEL,
    OPTIM,
    Best,
    FrontTrial,
    ReportData,
    Summary,
    TrialRow,
    Winner,
    finite,
    order,
)
from hpsearch.results.status import evidence_text, shown_state

TOP_FRACTION, TOP_AT_LEAST = 0.1, 3  # "what won" looks at the best tenth of the completed trials, 3 at least


def _row(t: FrozenTrial, key: str, axis: str) -> TrialRow:
    a = t.user_attrs
    values = t.values if t.state == TrialState.COMPLETE and t.values else [None, None]
    value = values[0] if finite(values[0]) else None  # with a cost, the figures show the quality objective
    cost = values[1] if len(values) > 1 and value is not None and finite(values[1]) else None
    reached = value
    if value is None and t.state != TrialState.COMPLETE:
        reached = next(iter(sections.curve(t, key, axis)[1][-1:]), None)
    duration = t.duration.total_seconds() if t.duration is not None else None
    trained = progress_axis.trained(t, axis)
    spent = next((a[k] for k in (TrialAttr.TRAIN_SECONDS, TrialAttr.WALL_TIME_S) if finite(a.get(k))), duration)
    return TrialRow(
        number=t.number,
        state=shown_state(t),
        value=value,
        reached=reached,
        duration_s=duration,
        pruned_at=trained if t.state == TrialState.PRUNED else None,
        trained=trained,
        budget=progress_axis.budget(t, axis),
        samples_per_second=throughput if finite(throughput := a.get(TrialAttr.TRAIN_SAMPLES_PER_SECOND)) else None,
        train_seconds=spent,
        params=dict(t.params),
        error=a.get(TrialAttr.ERROR)
        or (a.get(TrialAttr.PRUNE_REASON) if a.get(TrialAttr.PRUNE_REASON) not in (None, "pruner") else None)
        or evidence_text(a.get(TrialAttr.PRUNE_EVIDENCE)),
        train_eval_gap=_gap(a),
        cost=cost,
    )


def _gap(a: dict[str, Any]) -> float | None:
    """The recorded train_eval_gap; for trials recorded without it, from the last curve point."""
    if finite(a.get(TrialAttr.TRAIN_EVAL_GAP)):
        return float(a[TrialAttr.TRAIN_EVAL_GAP])
    last = (a.get(TrialAttr.CURVE) or [None])[-1]
    if not isinstance(last, dict) or not (
        finite(last.get(CurveKey.EVAL_LOSS)) and finite(last.get(CurveKey.TRAIN_LOSS))
    ):
        return None
    return float(last[CurveKey.EVAL_LOSS]) - float(last[CurveKey.TRAIN_LOSS])


def _shown(dist: BaseDistribution) -> tuple[BaseDistribution, dict[Any, Any]]:
    """A distribution as the figures show it, and its choices' labels: text choices escaped (plotly reads
    labels as HTML) and long ones by their end; numbers stay numbers, so their axes stay ordered."""
    if not isinstance(dist, CategoricalDistribution) or not any(isinstance(c, str) for c in dist.choices):
        return dist, {}
    labels = dict(zip(dist.choices, map(escape, ticks(dist.choices)), strict=True))
    labels = {c: label for c, label in labels.items() if isinstance(c, str)}
    return CategoricalDistribution([labels.get(c, c) for c in dist.choices]), labels


class Snapshot(FrozenTrial):
    """A trial of the figure study, which nothing changes once built. Optuna deep-copies each trial it adds
    and each list of trials it hands out (a figure reads them all); of a snapshot, the copy is itself, which
    saves seconds at 10,000 trials. Adding one to another study renumbers it: add a `copy.copy` of it."""

    def __deepcopy__(self, memo: dict) -> Snapshot:
        return self


def in_memory_study(directions, names: list[str]) -> optuna.Study:
    """An empty in-memory study with these objectives' directions and names, created without a word."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        study = optuna.create_study(directions=directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # stable since Optuna 3.2
        study.set_metric_names(names)
    return study


def figure_study(study: optuna.Study, trials: list[FrozenTrial], names: list[str]) -> optuna.Study:
    """An in-memory study for optuna.visualization and the importance evaluator: each trial's number, state,
    values and params (choices as `_shown`), as Snapshots. Not its attributes nor its intermediate values:
    Optuna's Pareto front writes a trial's attributes into its hover text, and no figure of Optuna's reads the
    rest. The numbers stay the stored ones because a study numbers its trials 0, 1, ... as Optuna does here."""
    shown = in_memory_study(study.directions, [escape(n) for n in names])  # names: the axis titles, legends
    cache: dict[tuple[str, BaseDistribution], tuple[BaseDistribution, dict]] = {}
    copies = []
    for t in trials:
        params, dists = {}, {}
        for name, value in t.params.items():
            if (name, t.distributions[name]) not in cache:  # one object per distribution, copied once per read
                cache[name, t.distributions[name]] = _shown(t.distributions[name])
            dist, labels = cache[name, t.distributions[name]]
            params[name], dists[name] = labels.get(value, value), dist
        snapshot = Snapshot(
            number=t.number,
            trial_id=t.number,
            state=t.state,
            value=None,
            values=t.values,
            datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete,
            params=params,
            distributions=dists,
            user_attrs={},
            system_attrs={},
            intermediate_values={},
        )
        copies.append(snapshot)
    shown.add_trials(copies)
    return shown


def _summary(
    study: optuna.Study,
    trials: list[FrozenTrial],
    rows: list[TrialRow],
    metric: str,
    cost: str | None,
    shown,
    axis: str,
) -> Summary:
    direction = study.directions[0].name.lower()
    states = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
    done = [r for r in rows if r.value is not None]
    best = sections.pick(direction)(done, key=lambda r: r.value) if done and cost is None else None
    by_number = {r.number: r for r in rows}
    front = [by_number[t.number] for t in pareto.pareto_front(shown)] if cost is not None else []
    saved, seconds_saved = 0, 0.0
    for r in rows:
        if r.state == "PRUNED" and isinstance(r.budget, int) and isinstance(r.trained, int):
            left = max(r.budget - r.trained, 0)
            saved += left
            if r.train_seconds and r.trained:
                seconds_saved += left * r.train_seconds / r.trained
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return Summary(
        study_name=study.study_name,
        metric=metric,
        direction=direction,
        states=states,
        best=Best(best.number, best.value, best.params) if best else None,
        compute_seconds=sum(r.train_seconds or 0.0 for r in rows),
        axis=axis,
        trained=sum(r.trained for r in rows if isinstance(r.trained, int)),
        saved=saved,
        seconds_saved=seconds_saved,
        wall_time_s=(max(ends) - min(starts)).total_seconds() if starts and ends else None,
        searched=tuple(sorted({name for t in trials for name in t.distributions})),
        cost=cost,
        front=tuple(FrontTrial(r.number, r.value, r.cost, r.params) for r in front if r.cost is not None),
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
        if name in categorical or not all(finite(v) for v in values):
            counts = {v: values.count(v) for v in sorted(order(values), key=values.count, reverse=True)}
            out.append(Winner(name, best, len(top), None, counts))
        else:
            out.append(Winner(name, best, len(top), (min(values), max(values)) if values else None, None))
    return tuple(out)


def _absent(names: tuple[str, ...], searched: tuple[str, ...], fixed: dict) -> str | None:
    """Why a figure over NAMES is left out: which of them the study fixed or did not search."""
    said = [
        f"{n} was fixed at {fixed[n]}" if n in fixed else f"{n} was not searched" for n in names if n not in searched
    ]
    return "; ".join(said) + " in this study, so there is no figure." if said else None


def collect(study: optuna.Study) -> ReportData:
    """Everything the report shows, as plain data, from one read of the study's trials."""
    trials = trials_read.get_trials(study)  # what study.get_trials(deepcopy=False) gives, faster
    spec = study.user_attrs.get(StudyAttr.SPEC) or {}
    metric = (spec.get("objective") or {}).get("metric") or "objective"
    cost = ((spec.get("objective") or {}).get("cost") or "cost") if len(study.directions) > 1 else None
    key = f"eval_{metric}"
    axis = progress_axis.of_study(study.user_attrs, trials)
    rows = [_row(t, key, axis) for t in trials]
    shown = figure_study(study, trials, [metric] if cost is None else [metric, cost])
    s = _summary(study, trials, rows, metric, cost, shown, axis)
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
    none = "No completed trial to plot."
    builders = {
        "history": ((), lambda: sections.get_history_info(done), none),
        "learning_rate": (
            (LEARNING_RATE,),
            lambda: sections.get_learning_rate_info(rows),
            "No trial reached a value to plot.",
        ),
        "batch_size": ((BATCH_SIZE,), lambda: sections.get_groups_info(rows, BATCH_SIZE), none),
        "optimizer": ((OPTIM,), lambda: sections.get_groups_info(rows, OPTIM), none),
        "heatmap": ((LEARNING_RATE, BATCH_SIZE), lambda: sections.get_heatmap_info(done, s.direction), none),
        "curves": ((), lambda: sections.get_curves_info(trials, key, s), "No trial reported an evaluation."),
        "overfitting": (
            (),
            lambda: sections.get_overfitting_info(done),
            "No completed trial has both a train and an eval loss at its end.",
        ),
        "parallel": ((), lambda: sections.get_parallel_info(done, s.direction), none),
    }
    if cost is not None:
        builders["pareto"] = ((), lambda: sections.get_pareto_info(done, s), none)
    if MODEL in s.searched:
        builders["model"] = ((MODEL,), lambda: sections.get_groups_info(rows, MODEL), none)
    found: dict[str, Any] = {}
    for name, (needs, build, empty) in builders.items():
        why = _absent(needs, s.searched, fixed)
        found[name] = None if why else build()
        if found[name] is None:
            notes[name] = why or empty
    found["importance"], why = sections.get_importance_info(shown, s.searched)
    if why:
        notes["importance"] = why
    found["confirmation"] = confirmation.summarize(study, trials=trials)
    return ReportData(s, _winners(done, s, categorical), tuple(rows), notes=notes, study=shown, **found)
