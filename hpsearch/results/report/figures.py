"""hpsearch's own figures, those optuna.visualization does not draw (the learning rate, batch size,
optimizer and model, the heatmap, learning curves, overfitting): each `get_*_plot(data)` draws one section."""

from __future__ import annotations

import math
from typing import Any

from hpsearch.results.report.labels import escape, ticks
from hpsearch.results.report.types import BATCH_SIZE, Curve, ReportData, order

GL_POINTS = 2000  # a scatter of more markers is drawn with WebGL
BOX_POINTS = 300  # a box shows every point up to this many, its outliers beyond
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "star", "hexagon", "cross", "x")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BEST, GREY = "#d62728", "#9a9a9a"


def _short(x: float) -> str:
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")


def _palette(names) -> dict[Any, str]:
    return {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(order(names))}


def style(fig, title: str, **layout):
    """The report's look on a figure, ours or Optuna's."""
    margin = {"l": 60, "r": 20, "t": 50, "b": 50}
    return fig.update_layout(template="plotly_white", title=title, margin=margin).update_layout(**layout)


def figure(traces: list, title: str, **layout):
    import plotly.graph_objects as go

    return style(go.Figure(traces), title, **layout)


def array(values) -> Any:
    """Numbers as a numpy array: plotly validates and encodes those in bulk (typed arrays in the page)."""
    import numpy as np

    return np.asarray(values, dtype=float)


def _key(name: str, marker: dict, group: str | None = None):
    """A legend entry with no points: the data traces mix marker shapes, so their own entries would mislead."""
    import plotly.graph_objects as go

    return go.Scatter(x=[None], y=[None], mode="markers", name=name, marker={"size": 9, **marker}, legendgroup=group)


def get_learning_rate_plot(d: ReportData):
    import plotly.graph_objects as go

    p, m = d.learning_rate, escape(d.summary.metric)
    colours = _palette(p.optims)
    symbols = {b: SYMBOLS[i % len(SYMBOLS)] for i, b in enumerate(order(p.batch_sizes))}
    scatter = go.Scattergl if len(p.numbers) > GL_POINTS else go.Scatter
    hover = "lr %{x:.3g}: %{y:.4g}<br>%{text}<extra></extra>"
    traces = []
    for optim, colour in colours.items():
        group = "trials" if optim is None else escape(optim)
        traces.append(_key(group, {"color": colour}, group))
        for pruned in (False, True):
            idx = [i for i, (o, q) in enumerate(zip(p.optims, p.pruned, strict=True)) if o == optim and q == pruned]
            shapes = [symbols[p.batch_sizes[i]] + ("-open" if pruned else "") for i in idx]
            size, opacity = (9, 0.6 if pruned else 0.85) if len(p.numbers) <= 1000 else (6, 0.3 if pruned else 0.5)
            marker = {"color": colour, "symbol": shapes, "size": size, "opacity": opacity}
            x, y = array([p.learning_rates[i] for i in idx]), array([p.values[i] for i in idx])
            state = "pruned" if pruned else "complete"
            text = [f"trial {p.numbers[i]} ({state}), batch {escape(p.batch_sizes[i])}, {group}" for i in idx]
            opts = {"legendgroup": group, "showlegend": False, "text": text, "hovertemplate": hover}
            traces.append(scatter(x=x, y=y, mode="markers", marker=marker, **opts))
    traces.append(_key("pruned (hollow)", {"symbol": "circle-open", "color": GREY}))
    if BATCH_SIZE in d.summary.searched:
        traces += [_key(f"batch {escape(b)}", {"symbol": symbol, "color": "#555"}) for b, symbol in symbols.items()]
    xaxis = {"type": "log", "title": "learning_rate", "exponentformat": "e"}
    return figure(traces, f"{m} against learning rate", xaxis=xaxis, yaxis_title=m)


def _box(name: str, values, colour: str):
    import plotly.graph_objects as go

    points = "all" if len(values) <= BOX_POINTS else "outliers"
    marker = {"color": colour, "size": 4}
    return go.Box(y=array(values), name=name, boxpoints=points, jitter=0.4, pointpos=0, marker=marker)


def _objective_and_throughput(g, metric: str, param: str):
    """Boxes of the objective and of the throughput per choice of a param, side by side."""
    from plotly.subplots import make_subplots

    m = escape(metric)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(m, "train samples per second"), horizontal_spacing=0.12)
    for label, values, throughput in zip(ticks(g.choices), g.values, g.throughput, strict=True):
        fig.add_trace(_box(escape(label), values, COLOURS[0]), row=1, col=1)
        fig.add_trace(_box(escape(label), throughput, COLOURS[2]), row=1, col=2)
    fig.update_xaxes(title_text=param, type="category")
    margin = {"l": 60, "r": 20, "t": 70, "b": 50}
    return fig.update_layout(template="plotly_white", showlegend=False, margin=margin)


def get_batch_size_plot(d: ReportData):
    return _objective_and_throughput(d.batch_size, d.summary.metric, "per_device_train_batch_size")


def get_model_plot(d: ReportData):
    return _objective_and_throughput(d.model, d.summary.metric, "model")


def get_optimizer_plot(d: ReportData):
    g, m = d.optimizer, escape(d.summary.metric)
    colours = _palette(g.choices)
    traces = [_box(escape(c), v, colours[c]) for c, v in zip(g.choices, g.values, strict=True)]
    return figure(traces, f"{m} per optimizer", xaxis_title="optim", yaxis_title=m, showlegend=False)


def get_heatmap_plot(d: ReportData):
    import plotly.graph_objects as go

    h, m = d.heatmap, escape(d.summary.metric)
    bins = [f"{_short(a)}–{_short(b)}" for a, b in zip(h.lr_edges, h.lr_edges[1:], strict=False)]
    text = [[f"n={c}" if c else "" for c in row] for row in h.counts]
    heat = go.Heatmap(
        z=h.best,
        x=bins,
        y=[f"batch {escape(b)}" for b in h.batch_sizes],
        text=text,
        texttemplate="%{z:.3g}<br>%{text}",
        colorscale="Viridis",
        reversescale=d.summary.direction == "minimize",  # the best cells are always the bright ones
        hoverongaps=False,
        colorbar={"title": {"text": m}},
    )
    xaxis = {"type": "category", "title": "learning_rate bin"}
    return figure([heat], f"best {m} per cell", xaxis=xaxis, yaxis={"type": "category"})


def _joined(curves: list[Curve]) -> tuple[Any, Any, Any]:
    """Many curves as one trace (gaps between them): a browser draws one path faster than a hundred."""
    xs, ys, ns = [], [], []
    for c in curves:
        xs += [*c.points, math.nan]
        ys += [*c.values, math.nan]
        ns += [c.number] * (len(c.points) + 1)
    return array(xs), array(ys), array(ns)


def get_curves_plot(d: ReportData):
    import plotly.graph_objects as go

    c, m = d.curves, escape(d.summary.metric)
    unit = "samples" if d.summary.axis == "samples" else "step"
    hover = f"trial %{{customdata}}<br>{unit} %{{x}}: %{{y:.4g}}<extra></extra>"
    styles = {
        "COMPLETE": {"color": COLOURS[0]},
        "PRUNED": {"color": GREY},
        "FAIL": {"color": "#8c564b", "dash": "dot"},
        "RUNNING": {"color": COLOURS[2], "dash": "dash"},  # a report taken while the sweep runs
    }
    traces = []
    for state, line in styles.items():
        group = [x for x in c.curves if x.state == state and not x.is_best]
        if group:
            x, y, n = _joined(group)
            line = {**line, "width": 1}
            opts = {"mode": "lines", "line": line, "opacity": 0.6, "customdata": n, "hovertemplate": hover}
            traces.append(go.Scatter(x=x, y=y, name=state.lower(), **opts))
    ends = [x for x in c.curves if x.state == "PRUNED"]
    if ends:
        x, y = array([e.points[-1] for e in ends]), array([e.values[-1] for e in ends])
        marker = {"symbol": "x-thin-open", "color": GREY, "size": 7}
        opts = {"customdata": [e.number for e in ends], "hovertemplate": hover}
        traces.append(go.Scatter(x=x, y=y, mode="markers", name="pruned here", marker=marker, **opts))
    kind = "front" if d.summary.cost else "best"
    for b in (x for x in c.curves if x.is_best):
        line, opts = {"color": BEST, "width": 3}, {"customdata": [b.number] * len(b.points), "hovertemplate": hover}
        name = f"{kind}: trial {b.number}"
        traces.append(go.Scatter(x=b.points, y=b.values, mode="lines+markers", name=name, line=line, **opts))
    shown = len(c.curves)
    title = f"all {shown} trials' curves"
    if c.seed is not None:
        title = f"{shown} of {c.total} curves: the best {c.n_best}, and {shown - c.n_best} at random (seed {c.seed})"
    x_title = "training samples seen" if d.summary.axis == "samples" else "step (stored before schema version 3)"
    return figure(traces, title, xaxis_title=x_title, yaxis_title=m)


def get_overfitting_plot(d: ReportData):
    import plotly.graph_objects as go

    g, m = d.overfitting, escape(d.summary.metric)
    best = d.summary.best.number if d.summary.best else None
    scatter = go.Scattergl if len(g.numbers) > GL_POINTS else go.Scatter
    hover = "trial %{customdata}<br>gap %{x:.4g}: %{y:.4g}<extra></extra>"
    traces = []
    for is_best in (False, True):
        idx = [i for i, n in enumerate(g.numbers) if (n == best) == is_best]
        if not idx:
            continue
        marker = {"color": BEST, "size": 12} if is_best else {"color": COLOURS[0], "size": 8, "opacity": 0.7}
        name = f"best: trial {best}" if is_best else "completed trials"
        x, y = array([g.gaps[i] for i in idx]), array([g.values[i] for i in idx])
        opts = {"customdata": [g.numbers[i] for i in idx], "hovertemplate": hover}
        traces.append(scatter(x=x, y=y, mode="markers", name=name, marker=marker, **opts))
    fig = figure(traces, f"{m} against the train/eval loss gap", xaxis_title="eval_loss - train_loss", yaxis_title=m)
    return fig.add_vline(x=0, line={"color": GREY, "dash": "dot", "width": 1})


def get_confirmation_plot(d: ReportData):
    """Each confirmed config: its values over seeds (the search's own trial a star), the mean and its 95 %
    interval; best mean at the top."""
    import plotly.graph_objects as go

    c, m = d.confirmation, escape(d.summary.metric)
    labels = [f"trial {x.trial}" for x in c.configs][::-1]
    configs = c.configs[::-1]
    finite_half = [x.high - x.mean if math.isfinite(x.high) else 0.0 for x in configs]
    traces = [
        go.Scatter(
            x=array([x.mean for x in configs]),
            y=labels,
            mode="markers",
            name="mean, 95 % interval",
            marker={"size": 12, "color": BEST, "symbol": "line-ns-open", "line": {"width": 3}},
            error_x={"type": "data", "array": array(finite_half), "thickness": 2, "width": 8},
            hovertemplate="%{y}: mean %{x:.4g}<extra></extra>",
        ),
        go.Scatter(
            x=array([v for x in configs for v in x.values[1:]]),
            y=[f"trial {x.trial}" for x in configs for _ in x.values[1:]],
            mode="markers",
            name="a new seed",
            marker={"size": 8, "color": GREY},
            hovertemplate="%{y}, a new seed: %{x:.4g}<extra></extra>",
        ),
        go.Scatter(
            x=array([x.values[0] for x in configs]),
            y=labels,
            mode="markers",
            name="the search's trial (one seed)",
            marker={"size": 13, "color": COLOURS[0], "symbol": "star"},
            hovertemplate="%{y}, the search's own run: %{x:.4g}<extra></extra>",
        ),
    ]
    return figure(traces, "Confirmed configs over seeds", xaxis_title=m, yaxis_title="config")


DRAW = {
    "confirmation": get_confirmation_plot,
    "learning_rate": get_learning_rate_plot,
    "batch_size": get_batch_size_plot,
    "optimizer": get_optimizer_plot,
    "model": get_model_plot,
    "heatmap": get_heatmap_plot,
    "curves": get_curves_plot,
    "overfitting": get_overfitting_plot,
}
