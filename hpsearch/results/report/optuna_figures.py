"""The figures optuna.visualization draws (optimization history, parameter importance, parallel coordinates,
Pareto front), drawn by it from collect's in-memory study (`ReportData.study`) and given the report's look."""

from __future__ import annotations

import copy
from typing import Any

import optuna

from hpsearch.results.report.collect import in_memory_study
from hpsearch.results.report.figures import BEST, COLOURS, GL_POINTS, GREY, style
from hpsearch.results.report.labels import escape
from hpsearch.results.report.types import Importance, ReportData


class _Given(optuna.importance.BaseImportanceEvaluator):
    """The importances collect already computed (PED-ANOVA over the same trials), so Optuna draws them
    without evaluating them again."""

    def __init__(self, importance: Importance) -> None:
        self._result = dict(zip(importance.params, importance.importances, strict=True))

    def evaluate(self, study, params=None, *, target=None) -> dict[str, float]:
        return dict(self._result)


def _quality(d: ReportData) -> Any:
    """Optuna's `target` for the quality objective: None in a study without a cost (its one objective)."""
    return (lambda t: t.values[0]) if d.summary.cost is not None else None


def _webgl(fig):
    """Optuna draws SVG scatters; a browser draws one of more than GL_POINTS markers far faster in WebGL."""
    import plotly.graph_objects as go

    traces = [
        go.Scattergl({k: v for k, v in t.to_plotly_json().items() if k != "type"})
        if t.type == "scatter" and t.x is not None and len(t.x) > GL_POINTS
        else t
        for t in fig.data
    ]
    return go.Figure(traces, fig.layout)


def get_history_plot(d: ReportData):
    m = escape(d.summary.metric)
    fig = optuna.visualization.plot_optimization_history(d.study, target=_quality(d), target_name=m)
    fig.update_traces(marker={"color": COLOURS[0], "opacity": 0.6}, selector={"name": m})
    fig.update_traces(line={"color": BEST, "shape": "hv"}, selector={"mode": "lines"})
    return _webgl(style(fig, f"{m} of each completed trial", xaxis_title="trial", yaxis_title=m))


def get_importance_plot(d: ReportData):
    imp, m = d.importance, escape(d.summary.metric)
    target = _quality(d)
    # With the importances given, Optuna reads the study's trials only for each param's distribution (its
    # hover text), deep-copying them all once per param: one completed trial per param tells it the same.
    done = d.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    first = {name: t.number for t in reversed(done) for name in t.params}
    shown = _subset(d.study, tuple(first.values()))
    fig = optuna.visualization.plot_param_importances(shown, evaluator=_Given(imp), target=target, target_name=m)
    fig.update_traces(marker_color=COLOURS[0])
    height = 140 + 40 * len(imp.params)
    return style(fig, "which parameter mattered most", xaxis_title="importance (sums to 1)", height=height)


def _subset(study: optuna.Study, numbers: tuple[int, ...]) -> optuna.Study:
    """An in-memory study of the trials NUMBERS of STUDY, numbered anew (the figures drawn from it show no numbers)."""
    sub = in_memory_study(study.directions, study.metric_names)
    keep = set(numbers)
    sub.add_trials([copy.copy(t) for t in study.get_trials(deepcopy=False) if t.number in keep])  # see Snapshot
    return sub


def get_parallel_plot(d: ReportData):
    lines = d.parallel
    shown = d.study if lines.seed is None else _subset(d.study, lines.numbers)
    if d.summary.cost is None:  # coloured by the objective
        fig = optuna.visualization.plot_parallel_coordinate(shown, target_name=escape(d.summary.metric))
    else:  # both objectives as axes, coloured by Pareto rank
        fig = optuna.visualization.plot_parallel_coordinate(shown)
    title = ""
    if lines.seed is not None:
        title = (
            f"{len(lines.numbers)} of {lines.total} completed trials: the best {lines.n_best},"
            f" and {len(lines.numbers) - lines.n_best} at random (seed {lines.seed})"
        )
    return style(fig, title, margin={"l": 80, "r": 110, "t": 70, "b": 40})


def get_pareto_plot(d: ReportData):
    p, s = d.pareto, d.summary
    m, c = escape(s.metric), escape(p.cost)
    fig = optuna.visualization.plot_pareto_front(
        d.study,
        target_names=[f"{c} (minimized)", f"{m} ({s.direction}d)"],
        targets=lambda t: (t.values[1], t.values[0]),
    )
    # Optuna colours both kinds by trial number; ours: the front in red, the dominated in grey
    fig.update_traces(marker={"color": GREY, "size": 7, "opacity": 0.6, "showscale": False}, selector=0)
    fig.update_traces(marker={"color": BEST, "size": 10, "showscale": False}, selector=1)
    title = f"{len(p.front)} of {len(p.numbers)} completed trials on the front"
    return _webgl(style(fig, title, margin={"l": 60, "r": 20, "t": 50, "b": 50}))


DRAW = {
    "pareto": get_pareto_plot,
    "history": get_history_plot,
    "importance": get_importance_plot,
    "parallel": get_parallel_plot,
}
