"""The trials of a study as rows of plain data, and as a text table."""

from __future__ import annotations

import optuna

from hpsearch import trials_read
from hpsearch.progress import format_params, format_value


def retried(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the trials that died (no heartbeat) and were queued again."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def rows(study: optuna.Study) -> list[dict]:
    out = []
    trials = study.get_trials(deepcopy=False)
    dead = retried(trials)
    for t in trials:
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
                "error": t.user_attrs.get("error")
                or ("no heartbeat: worker died; re-run" if t.number in dead else None),
                "prune_reason": t.user_attrs.get("prune_reason"),
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
        reason = r["error"] or (r["prune_reason"] if r["prune_reason"] != "pruner" else None)
        if reason:
            detail += f"  [{reason[:80]}]"
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


def studies(storage: optuna.storages.BaseStorage) -> list[dict]:
    """Every study in a storage: trials by state, best value, last activity."""
    out = []
    for summary in optuna.study.get_all_study_summaries(storage, include_best_trial=True):
        trials = trials_read.get_trials(optuna.load_study(study_name=summary.study_name, storage=storage))
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        times = [t.datetime_complete or t.datetime_start for t in trials if t.datetime_complete or t.datetime_start]
        best = summary.best_trial if len(summary.directions) == 1 else None  # no single best otherwise
        out.append(
            {
                "study": summary.study_name,
                "directions": [d.name.lower() for d in summary.directions],
                "trials": len(trials),
                "states": states,
                "best_value": best.value if best else None,
                "best_trial": best.number if best else None,
                "last_activity": max(times).isoformat(timespec="seconds") if times else None,
            }
        )
    return out


def studies_table(rows: list[dict]) -> str:
    if not rows:
        return "no studies"
    header = ["study", "trials", "complete", "pruned", "failed", "running", "best", "last activity"]
    lines = [
        [
            r["study"],
            str(r["trials"]),
            *(str(r["states"].get(s, 0)) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")),
            "-" if r["best_value"] is None else f"{format_value(r['best_value'])} (trial {r['best_trial']})",
            r["last_activity"] or "-",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *lines]
    )
