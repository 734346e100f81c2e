"""Draw a `ReportData` as one self-contained HTML document: plotly's JavaScript embedded once, so
the file opens offline; every user-given text escaped."""

from __future__ import annotations

from pathlib import Path

import optuna

from hpsearch.errors import SpecError, cannot_write
from hpsearch.results import confirmation
from hpsearch.results.format import format_params, format_value
from hpsearch.results.report import figures, optuna_figures
from hpsearch.results.report.collect import collect
from hpsearch.results.report.labels import escape as _e
from hpsearch.results.report.types import ReportData

TITLES = {
    "confirmation": (
        "How sure is the winner?",
        "The best configs trained again with new seeds (hpsearch confirm): each seed's value, the search's own"
        " single-seed value (star), the mean and its 95 % interval.",
    ),
    "pareto": (
        "Pareto front: quality against cost",
        "Each completed trial; in red the Pareto-optimal ones, which no other trial beats on both.",
    ),
    "history": (
        "Optimisation history",
        "Each completed trial's objective, and the best so far (with a cost objective, the front says what is best).",
    ),
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
    "parallel": (
        "Parallel coordinates",
        "One line per completed trial (the best and a seeded sample beyond 500), coloured by the objective"
        " (with a cost, by Pareto rank).",
    ),
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


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


DRAW = {**figures.DRAW, **optuna_figures.DRAW}


def _summary_html(d: ReportData) -> str:
    s = d.summary
    states = ", ".join(f"{n} {state.lower()}" for state, n in s.states.items())
    saved = f"{s.saved:,} {s.axis} not trained"
    if s.saved:
        saved += f" ({s.saved / (s.saved + s.trained):.0%} of all trials' {s.axis})"
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
        ("compute spent", f"{_seconds(s.compute_seconds)} of training, {s.trained:,} {s.axis}"),
        ("pruning saved", saved),
        ("study wall time", _seconds(s.wall_time_s)),
        ("objective", f"{_e(s.metric)}, {s.direction}" + (f"; cost {_e(s.cost)}, minimize" if s.cost else "")),
    ]
    out = ["<table class=kv>", *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows), "</table>"]
    if s.axis == "steps":
        out.append("<p class=note>Stored before schema version 3: its progress is counted in optimizer steps.</p>")
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
    head = (
        "#",
        "state",
        _e(s.metric),
        *cost,
        "train/eval gap",
        "duration",
        "pruned at (samples)" if s.axis == "samples" else "pruned at (step)",
        "params",
        "error or why pruned",
    )
    lines = ["<div class=scroll><table class=trials><tr>", *(f"<th>{h}</th>" for h in head), "</tr>"]
    for r in d.trials:
        value = "-" if r.reached is None else format_value(r.reached)
        value = value if r.value is not None or r.reached is None else f"({value})"
        pruned_at = "-" if r.pruned_at is None else f"{r.pruned_at:,}"
        gap = "-" if r.train_eval_gap is None else format_value(r.train_eval_gap)
        duration, params = _seconds(r.duration_s), format_params(r.params)
        spent = ("-" if r.cost is None else format_value(r.cost),) if cost else ()
        cells = (r.number, r.state, value, *spent, gap, duration, pruned_at, params, r.error or "")
        row = "".join(f"<td>{_e(c)}</td>" for c in cells)
        lines.append(f"<tr class=best>{row}</tr>" if r.number in best else f"<tr>{row}</tr>")
    lines.append(
        "</table></div><p class=sub>(value): the last evaluation of a trial that did not complete."
        " train/eval gap: eval loss minus train loss at the trial's last evaluation. Why pruned: the trial's"
        " value against the pruner's bar, and the standard error of its evaluation times tolerance_se.</p>"
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
        if name == "confirmation":
            lines = confirmation.verdict(data.confirmation, s.metric)
            parts.append("<p class=verdict>" + "<br>".join(_e(line) for line in lines) + "</p>")
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
    problem = cannot_write(path)
    if problem is not None:
        raise SpecError("hpsearch report", "--out", f"{path}: {problem}; give a file in a writable folder")
    page = render(collect(study))  # before anything is written: a failure leaves no folder behind
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
