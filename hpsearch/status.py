"""The trials of a study as rows of plain data, and as a text table."""

from __future__ import annotations

import optuna

from hpsearch.progress import format_params, format_value


def rows(study: optuna.Study) -> list[dict]:
    out = []
    for t in study.get_trials(deepcopy=False):
        pruned_at = t.last_step if t.state == optuna.trial.TrialState.PRUNED else None
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": dict(t.params),
                "value": t.value,
                "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None,
                "pruned_at_step": pruned_at,
                "steps_trained": t.user_attrs.get("steps_trained"),
                "error": t.user_attrs.get("error"),
            }
        )
    return out


def table(study: optuna.Study, metric: str) -> str:
    header = ["#", "state", metric, "duration", "pruned at", "params"]
    lines = []
    for r in rows(study):
        value = "-" if r["value"] is None else format_value(r["value"])
        duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        pruned = "-" if r["pruned_at_step"] is None else str(r["pruned_at_step"])
        detail = format_params(r["params"])
        if r["error"]:
            detail += f"  [{r['error'][:80]}]"
        lines.append([str(r["number"]), r["state"], value, duration, pruned, detail])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header) - 1)]
    text = []
    for row in [header, *lines]:
        text.append("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    try:
        best = study.best_trial
        text.append(f"best: trial {best.number}, {metric}={format_value(best.value)}")
    except ValueError:
        text.append("best: none yet (no completed trial)")
    return "\n".join(text)
