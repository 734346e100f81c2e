"""Draw a `ReportData` as one self-contained HTML document: plotly's JavaScript embedded once, so
the file opens offline; every user-given text escaped."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import optuna

from hpsearch.results.format import format_params, format_value
from hpsearch.results.report.collect import BATCH_SIZE, Curve, ReportData, collect, order

GL_POINTS = 2000  # a scatter of more markers is drawn with WebGL
BOX_POINTS = 300  # a box shows every point up to this many, its outliers beyond
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "star", "hexagon", "cross", "x")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BEST, GREY = "#d62728", "#9a9a9a"
TICK = 24  # characters of a categorical choice on an axis (model names run long)
TITLES = {
    "pareto": (
        "Pareto front: quality against cost",
        "Each completed trial; in red the Pareto-optimal ones, which no other trial beats on both.",
    ),
    "history": ("Optimisation history", "Each completed trial's objective, and the best so far."),
    "learning_rate": ("Learning rate", "Colour: optimizer. Marker: batch size. Hollow: pruned, at its last value."),
    "batch_size": ("Batch size", "The objective (completed trials) and the throughput per batch size."),
    "optimizer": ("Optimizer", "The objective per optimizer (completed trials)."),
    "model": ("Model", "The objective (completed trials) and the throughput per model (search.model)."),
    "heatmap": ("Learning rate x batch size", "Best objective per cell; n = completed trials in the cell."),
    "curves": ("Learning curves", "The objective at each evaluation; pruned curves end where they were pruned."),
    "overfitting": (
        "Overfitting: train/eval loss gap against the objective",
        "Each completed trial's eval loss minus its train loss at its last evaluation; right of 0, the model fits"
        " its training data better than the held-out data.",
    ),
    "importance": ("Parameter importance", "PED-ANOVA, Optuna's default evaluator, over the completed trials."),
    "parallel": ("Parallel coordinates", "One line per completed trial, coloured by the objective."),
}
GRID = ("learning_rate", "batch_size", "optimizer", "model", "heatmap")  # drawn two abreast
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1320px; padding: 0 1em; color: #222; }
h2 { margin-top: 1.4em; border-bottom: 1px solid #ddd; } .sub { color: #666; margin: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(580px, 1fr)); gap: 0 2em; }
.kv td, .kv th { text-align: left; padding: 2px 14px 2px 0; vertical-align: top; } .big { font-size: 1.3em; }
.note { color: #7a4f00; background: #fff4d6; padding: 6px 10px; border-radius: 4px; }
.scroll { max-height: 640px; overflow: auto; border: 1px solid #ddd; }
table.trials { border-collapse: collapse; font-size: 0.85em; width: 100%; }
table.trials th { position: sticky; top: 0; background: #f4f4f4; }
table.trials td, table.trials th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
tr.best { background: #fde8e8; font-weight: bold; }
"""


def _e(text: Any) -> str:
    """User text (names, choices, errors) as HTML: plotly too reads its labels as HTML."""
    return html.escape(str(text))


def _short(x: float) -> str:
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")


def _tick(text: str) -> str:
    """An axis label of at most TICK characters: a long choice (a model's path or hub id) keeps its
    end, the part that tells models apart; the full names are in the summary and the trials table."""
    return text if len(text) <= TICK else "…" + text[-(TICK - 1) :]


def _ticks(choices) -> list[str]:
    """Each choice's axis label: shortened by `_tick`, unless two would then read the same
    (…/run-a/checkpoint-best and …/run-b/checkpoint-best): then the full names."""
    short = [_tick(str(c)) for c in choices]
    return short if len(set(short)) == len(short) else [str(c) for c in choices]


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def _palette(names) -> dict[Any, str]:
    return {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(order(names))}


def _figure(traces: list, title: str, **layout):
    import plotly.graph_objects as go

    fig = go.Figure(traces)
    margin = {"l": 60, "r": 20, "t": 50, "b": 50}
    return fig.update_layout(template="plotly_white", title=title, margin=margin).update_layout(**layout)


def _array(values) -> Any:
    """Numbers as a numpy array: plotly validates and encodes those in bulk (typed arrays in the page)."""
    import numpy as np

    return np.asarray(values, dtype=float)


def _fig_history(d: ReportData):
    import plotly.graph_objects as go

    h, m = d.history, _e(d.summary.metric)
    scatter = go.Scattergl if len(h.numbers) > GL_POINTS else go.Scatter
    x = _array(h.numbers)
    traces = [
        scatter(x=x, y=_array(h.values), mode="markers", name=m, marker={"color": COLOURS[0], "opacity": 0.6}),
        scatter(x=x, y=_array(h.best_so_far), mode="lines", name="best so far", line={"color": BEST, "shape": "hv"}),
    ]
    return _figure(traces, f"{m} of each completed trial", xaxis_title="trial", yaxis_title=m)


def _key(name: str, marker: dict, group: str | None = None):
    """A legend entry with no points: the data traces mix marker shapes, so their own entries would mislead."""
    import plotly.graph_objects as go

    return go.Scatter(x=[None], y=[None], mode="markers", name=name, marker={"size": 9, **marker}, legendgroup=group)


def _fig_learning_rate(d: ReportData):
    import plotly.graph_objects as go

    p, m = d.learning_rate, _e(d.summary.metric)
    colours = _palette(p.optims)
    symbols = {b: SYMBOLS[i % len(SYMBOLS)] for i, b in enumerate(order(p.batch_sizes))}
    scatter = go.Scattergl if len(p.numbers) > GL_POINTS else go.Scatter
    hover = "lr %{x:.3g}: %{y:.4g}<br>%{text}<extra></extra>"
    traces = []
    for optim, colour in colours.items():
        group = "trials" if optim is None else _e(optim)
        traces.append(_key(group, {"color": colour}, group))
        for pruned in (False, True):
            idx = [i for i, (o, q) in enumerate(zip(p.optims, p.pruned, strict=True)) if o == optim and q == pruned]
            shapes = [symbols[p.batch_sizes[i]] + ("-open" if pruned else "") for i in idx]
            size, opacity = (9, 0.6 if pruned else 0.85) if len(p.numbers) <= 1000 else (6, 0.3 if pruned else 0.5)
            marker = {"color": colour, "symbol": shapes, "size": size, "opacity": opacity}
            x, y = _array([p.learning_rates[i] for i in idx]), _array([p.values[i] for i in idx])
            state = "pruned" if pruned else "complete"
            text = [f"trial {p.numbers[i]} ({state}), batch {_e(p.batch_sizes[i])}, {group}" for i in idx]
            opts = {"legendgroup": group, "showlegend": False, "text": text, "hovertemplate": hover}
            traces.append(scatter(x=x, y=y, mode="markers", marker=marker, **opts))
    traces.append(_key("pruned (hollow)", {"symbol": "circle-open", "color": GREY}))
    if BATCH_SIZE in d.summary.searched:
        traces += [_key(f"batch {_e(b)}", {"symbol": symbol, "color": "#555"}) for b, symbol in symbols.items()]
    xaxis = {"type": "log", "title": "learning_rate", "exponentformat": "e"}
    return _figure(traces, f"{m} against learning rate", xaxis=xaxis, yaxis_title=m)


def _box(name: str, values, colour: str):
    import plotly.graph_objects as go

    points = "all" if len(values) <= BOX_POINTS else "outliers"
    marker = {"color": colour, "size": 4}
    return go.Box(y=_array(values), name=name, boxpoints=points, jitter=0.4, pointpos=0, marker=marker)


def _objective_and_throughput(g, metric: str, param: str):
    """Boxes of the objective and of the throughput per choice of a param, side by side."""
    from plotly.subplots import make_subplots

    m = _e(metric)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(m, "train samples per second"), horizontal_spacing=0.12)
    for label, values, throughput in zip(_ticks(g.choices), g.values, g.throughput, strict=True):
        fig.add_trace(_box(_e(label), values, COLOURS[0]), row=1, col=1)
        fig.add_trace(_box(_e(label), throughput, COLOURS[2]), row=1, col=2)
    fig.update_xaxes(title_text=param, type="category")
    margin = {"l": 60, "r": 20, "t": 70, "b": 50}
    return fig.update_layout(template="plotly_white", showlegend=False, margin=margin)


def _fig_batch_size(d: ReportData):
    return _objective_and_throughput(d.batch_size, d.summary.metric, "per_device_train_batch_size")


def _fig_model(d: ReportData):
    return _objective_and_throughput(d.model, d.summary.metric, "model")


def _fig_optimizer(d: ReportData):
    g, m = d.optimizer, _e(d.summary.metric)
    colours = _palette(g.choices)
    traces = [_box(_e(c), v, colours[c]) for c, v in zip(g.choices, g.values, strict=True)]
    return _figure(traces, f"{m} per optimizer", xaxis_title="optim", yaxis_title=m, showlegend=False)


def _fig_heatmap(d: ReportData):
    import plotly.graph_objects as go

    h, m = d.heatmap, _e(d.summary.metric)
    bins = [f"{_short(a)}–{_short(b)}" for a, b in zip(h.lr_edges, h.lr_edges[1:], strict=False)]
    text = [[f"n={c}" if c else "" for c in row] for row in h.counts]
    heat = go.Heatmap(
        z=h.best,
        x=bins,
        y=[f"batch {_e(b)}" for b in h.batch_sizes],
        text=text,
        texttemplate="%{z:.3g}<br>%{text}",
        colorscale="Viridis",
        reversescale=d.summary.direction == "minimize",  # the best cells are always the bright ones
        hoverongaps=False,
        colorbar={"title": {"text": m}},
    )
    xaxis = {"type": "category", "title": "learning_rate bin"}
    return _figure([heat], f"best {m} per cell", xaxis=xaxis, yaxis={"type": "category"})


def _joined(curves: list[Curve]) -> tuple[Any, Any, Any]:
    """Many curves as one trace (gaps between them): a browser draws one path faster than a hundred."""
    xs, ys, ns = [], [], []
    for c in curves:
        xs += [*c.steps, math.nan]
        ys += [*c.values, math.nan]
        ns += [c.number] * (len(c.steps) + 1)
    return _array(xs), _array(ys), _array(ns)


def _fig_curves(d: ReportData):
    import plotly.graph_objects as go

    c, m = d.curves, _e(d.summary.metric)
    hover = "trial %{customdata}<br>step %{x}: %{y:.4g}<extra></extra>"
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
        x, y = _array([e.steps[-1] for e in ends]), _array([e.values[-1] for e in ends])
        marker = {"symbol": "x-thin-open", "color": GREY, "size": 7}
        opts = {"customdata": [e.number for e in ends], "hovertemplate": hover}
        traces.append(go.Scatter(x=x, y=y, mode="markers", name="pruned here", marker=marker, **opts))
    kind = "front" if d.summary.cost else "best"
    for b in (x for x in c.curves if x.is_best):
        line, opts = {"color": BEST, "width": 3}, {"customdata": [b.number] * len(b.steps), "hovertemplate": hover}
        traces.append(
            go.Scatter(x=b.steps, y=b.values, mode="lines+markers", name=f"{kind}: trial {b.number}", line=line, **opts)
        )
    shown = len(c.curves)
    title = f"all {shown} trials' curves"
    if c.seed is not None:
        title = f"{shown} of {c.total} curves: the best {c.n_best}, and {shown - c.n_best} at random (seed {c.seed})"
    return _figure(traces, title, xaxis_title="step", yaxis_title=m)


def _fig_overfitting(d: ReportData):
    import plotly.graph_objects as go

    g, m = d.overfitting, _e(d.summary.metric)
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
        x, y = _array([g.gaps[i] for i in idx]), _array([g.values[i] for i in idx])
        opts = {"customdata": [g.numbers[i] for i in idx], "hovertemplate": hover}
        traces.append(scatter(x=x, y=y, mode="markers", name=name, marker=marker, **opts))
    fig = _figure(traces, f"{m} against the train/eval loss gap", xaxis_title="eval_loss - train_loss", yaxis_title=m)
    return fig.add_vline(x=0, line={"color": GREY, "dash": "dot", "width": 1})


def _fig_importance(d: ReportData):
    import plotly.graph_objects as go

    imp = d.importance
    bar = go.Bar(x=imp.importances[::-1], y=[_e(p) for p in imp.params[::-1]], orientation="h", marker_color=COLOURS[0])
    height = 140 + 40 * len(imp.params)
    return _figure([bar], "which parameter mattered most", xaxis_title="importance (sums to 1)", height=height)


def _fig_parallel(d: ReportData):
    import plotly.graph_objects as go

    p = d.parallel
    dims = []
    for a in p.axes:
        dim = {"label": _e(a.label), "values": _array(a.values)}
        if a.tickvals is not None:
            dim.update(tickvals=a.tickvals, ticktext=[_e(t) for t in _ticks(a.ticktext)])
        dims.append(dim)
    colorbar = {"title": {"text": _e(d.summary.metric)}, "x": 1.06}
    line = {"color": _array(p.values), "colorscale": "Viridis", "showscale": True, "colorbar": colorbar}
    line["reversescale"] = d.summary.direction == "minimize"
    margin = {"l": 80, "r": 110, "t": 70, "b": 40}
    return _figure([go.Parcoords(dimensions=dims, line=line)], "", margin=margin)


def _fig_pareto(d: ReportData):
    import plotly.graph_objects as go

    p, m, c = d.pareto, _e(d.summary.metric), _e(d.pareto.cost)
    scatter = go.Scattergl if len(p.numbers) > GL_POINTS else go.Scatter
    others = [i for i, on in enumerate(p.on_front) if not on]
    front = sorted((i for i, on in enumerate(p.on_front) if on), key=lambda i: p.costs[i])  # a line from cheap to dear
    dominated = {"mode": "markers", "marker": {"color": GREY, "size": 7, "opacity": 0.6}}
    optimal = {"mode": "lines+markers", "marker": {"color": BEST, "size": 10}, "line": {"shape": "hv"}}
    traces = []
    for idx, name, style in ((others, "dominated", dominated), (front, "Pareto front", optimal)):
        text = [f"trial {p.numbers[i]}" for i in idx]
        x, y = _array([p.costs[i] for i in idx]), _array([p.values[i] for i in idx])
        traces.append(scatter(x=x, y=y, text=text, name=name, hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}", **style))
    title = f"{len(p.front)} of {len(p.numbers)} completed trials on the front"
    return _figure(traces, title, xaxis_title=f"{c} (minimized)", yaxis_title=f"{m} ({d.summary.direction}d)")


DRAW = {
    "pareto": _fig_pareto,
    "history": _fig_history,
    "learning_rate": _fig_learning_rate,
    "batch_size": _fig_batch_size,
    "optimizer": _fig_optimizer,
    "model": _fig_model,
    "heatmap": _fig_heatmap,
    "curves": _fig_curves,
    "overfitting": _fig_overfitting,
    "importance": _fig_importance,
    "parallel": _fig_parallel,
}


def _summary_html(d: ReportData) -> str:
    s = d.summary
    states = ", ".join(f"{n} {state.lower()}" for state, n in s.states.items())
    saved = f"{s.steps_saved:,} steps not trained"
    if s.steps_saved:
        saved += f" ({s.steps_saved / (s.steps_saved + s.steps_trained):.0%} of all trials' steps)"
        saved += f", about {_seconds(s.seconds_saved)} of training" if s.seconds_saved else ""
    best = "none: no trial completed"
    if s.cost is not None and s.front:
        n = len(s.front)
        best = f"<span class=big>{n} Pareto-optimal trial{'' if n == 1 else 's'}</span>, best {_e(s.metric)} first:"
        best += "".join(
            f"<br>trial {f.number}: {_e(s.metric)} = {format_value(f.value)}, {_e(s.cost)} = {format_value(f.cost)}"
            f" &nbsp; <span class=sub>{_e(format_params(f.params))}</span>"
            for f in s.front
        )
    elif s.best is not None:
        best = f"trial {s.best.number}: <span class=big>{_e(s.metric)} = {format_value(s.best.value)}</span>"
        best += f"<br>{_e(format_params(s.best.params))}"
    rows = [
        ("pareto front" if s.cost is not None else "best", best),
        ("trials", f"{sum(s.states.values())}: {states}"),
        ("compute spent", f"{_seconds(s.compute_seconds)} of training, {s.steps_trained:,} steps"),
        ("pruning saved", saved),
        ("study wall time", _seconds(s.wall_time_s)),
        ("objective", f"{_e(s.metric)}, {s.direction}" + (f"; cost {_e(s.cost)}, minimize" if s.cost else "")),
    ]
    out = ["<table class=kv>", *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows), "</table>"]
    if d.winners:
        n = d.winners[0].n_top
        trials = "trial" if n == 1 else f"{n} trials"
        by = f" by {_e(s.metric)}" if s.cost is not None else ""  # with a cost: ranked by quality alone
        out.append(f"<h3>What won{by}: the best trial, and what the best {trials} chose</h3><table class=kv>")
        out.append(f"<tr><th>parameter</th><th>best trial</th><th>best {trials}</th></tr>")
        for w in d.winners:
            if w.top_counts is not None:
                top = ", ".join(f"{_e(format_value(k))} ×{c}" for k, c in w.top_counts.items())
            else:
                top = "-" if w.top_range is None else " to ".join(format_value(v) for v in w.top_range)
            out.append(f"<tr><td>{_e(w.param)}</td><td><b>{_e(format_value(w.best))}</b></td><td>{top}</td></tr>")
        out.append("</table>")
    if "summary" in d.notes:
        out.append(f"<p class=note>{_e(d.notes['summary'])}</p>")
    return "\n".join(out)


def _trials_html(d: ReportData) -> str:
    s = d.summary
    best = {s.best.number} if s.best else {f.number for f in s.front}  # highlighted: the best, or the front
    cost = (_e(s.cost),) if s.cost is not None else ()
    head = ("#", "state", _e(s.metric), *cost, "train/eval gap", "duration", "pruned at", "params", "error")
    lines = ["<div class=scroll><table class=trials><tr>", *(f"<th>{h}</th>" for h in head), "</tr>"]
    for r in d.trials:
        value = "-" if r.reached is None else format_value(r.reached)
        value = value if r.value is not None or r.reached is None else f"({value})"
        pruned_at = "-" if r.pruned_at is None else str(r.pruned_at)
        gap = "-" if r.train_eval_gap is None else format_value(r.train_eval_gap)
        duration, params = _seconds(r.duration_s), format_params(r.params)
        spent = ("-" if r.cost is None else format_value(r.cost),) if cost else ()
        cells = (r.number, r.state, value, *spent, gap, duration, pruned_at, params, r.error or "")
        row = "".join(f"<td>{_e(c)}</td>" for c in cells)
        lines.append(f"<tr class=best>{row}</tr>" if r.number in best else f"<tr>{row}</tr>")
    lines.append(
        "</table></div><p class=sub>(value): the last evaluation of a trial that did not complete."
        " train/eval gap: eval loss minus train loss at the trial's last evaluation.</p>"
    )
    return "\n".join(lines)


def render(data: ReportData) -> str:
    """One self-contained HTML document: plotly's JavaScript inline once, then the summary, figures and table."""
    import plotly.io as pio
    import plotly.offline

    s = data.summary
    parts = [f"<h1>Study {_e(s.study_name)}: {_e(s.metric)}</h1>", "<h2>Summary</h2>", _summary_html(data)]
    for name in data.sections:
        if name == GRID[0]:
            parts.append("<div class=grid>")
        title, sub = TITLES[name]
        parts.append(f"<section><h2>{title}</h2><p class=sub>{sub}</p>")
        if name in data.notes:
            parts.append(f"<p class=note>{_e(data.notes[name])}</p>")
        if getattr(data, name) is not None:
            config = {"displaylogo": False, "responsive": True}
            fig = DRAW[name](data)
            parts.append(
                pio.to_html(
                    fig,
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"figure-{name}",
                    config=config,
                    default_height="440px",
                )
            )
        parts.append("</section>")
        if name == GRID[-1]:
            parts.append("</div>")
    parts += ["<h2>All trials</h2>", _trials_html(data)]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>hpsearch report: {_e(s.study_name)}</title><style>{CSS}</style>\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script>\n</head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write(study: optuna.Study, path: Path) -> Path:
    """Collect, render and write the report to PATH, creating its folder; returns PATH."""
    path = Path(path)
    page = render(collect(study))  # before anything is written: a failure leaves no folder behind
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
