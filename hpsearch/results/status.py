"""The trials of a study as rows of plain data, and as a text table."""

from __future__ import annotations

import optuna

from hpsearch.results import trials_read
from hpsearch.results.confirmation import Confirmation
from hpsearch.results.format import format_params, format_value
from hpsearch.results.pareto import pareto_front
from hpsearch.results.record import CurveKey, TrialAttr


def retried(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the trials that died (no heartbeat) and were queued again."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def rows(study: optuna.Study, confirmed: Confirmation | None = None) -> list[dict]:
    """One dict per trial. `value` is the objective (the quality one, with a cost); a study with a cost
    objective adds `cost` and `pareto` (the trial is on the Pareto front); a confirmed config adds
    `confirmed` (its seeds, values, mean, std and 95 % interval; `hpsearch confirm`)."""
    out = []
    trials = study.get_trials(deepcopy=False)
    dead = retried(trials)
    front = {t.number for t in pareto_front(study, trials)} if len(study.directions) > 1 else None
    for t in trials:
        pruned = t.state == optuna.trial.TrialState.PRUNED
        curve = t.user_attrs.get(TrialAttr.CURVE) or [{}]
        on_samples = CurveKey.SAMPLES in curve[-1]  # keyed by samples since schema version 3, else by step
        out.append(
            {
                "number": t.number,
                "state": shown_state(t),
                "params": dict(t.params),
                "value": t.values[0] if t.values else None,
                "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None,
                "pruned_at_samples": t.last_step if pruned and on_samples else None,
                "pruned_at_step": (curve[-1].get(CurveKey.STEP) if on_samples else t.last_step) if pruned else None,
                "prune_evidence": t.user_attrs.get(TrialAttr.PRUNE_EVIDENCE),
                "steps_trained": t.user_attrs.get(TrialAttr.STEPS_TRAINED),
                "error": t.user_attrs.get(TrialAttr.ERROR)
                or ("no heartbeat: worker died; re-run" if t.number in dead else None),
                "prune_reason": t.user_attrs.get(TrialAttr.PRUNE_REASON),
                "slurm_job": t.user_attrs.get(TrialAttr.SLURM_JOB),
            }
        )
        if front is not None:
            out[-1].update(cost=t.values[1] if t.values else None, pareto=t.number in front)
        if confirmed is not None and confirmed.of(t.number) is not None:
            out[-1]["confirmed"] = confirmed.of(t.number).to_dict()
    return out


def shown_state(t: optuna.trial.FrozenTrial) -> str:
    """The state status and the report show: Optuna's, but SKIPPED for a trial stored as pruned that never
    trained (two workers started trials at one moment; `TrialAttr.SKIPPED` says why)."""
    return "SKIPPED" if t.user_attrs.get(TrialAttr.SKIPPED) else t.state.name


def _cell(value) -> str:
    return "-" if value is None else format_value(value)


def table(study: optuna.Study, metric: str, cost: str | None = None) -> str:
    """The trials as a text table, then the best trial; with a cost objective, a column for it and a
    `*` on the Pareto-optimal trials, then the front instead of one best."""
    table_rows = rows(study)
    multi = len(study.directions) > 1
    header = ["#", "state", metric, *([cost or "cost", "front"] if multi else []), "duration", "pruned at", "params"]
    lines = []
    for r in table_rows:
        duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        pruned = _pruned_at(r)
        detail = format_params(r["params"])
        reason = r["error"] or (
            r["prune_reason"] if r["prune_reason"] != "pruner" else evidence_text(r["prune_evidence"])
        )
        if reason:
            detail += f"  [{reason[:80]}]"
        if r["slurm_job"] and r["state"] == "RUNNING":
            detail += f"  [slurm job {r['slurm_job']}]"
        front = [_cell(r["cost"]), "*" if r["pareto"] else ""] if multi else []
        lines.append([str(r["number"]), r["state"], _cell(r["value"]), *front, duration, pruned, detail])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header) - 1)]
    text = []
    for row in [header, *lines]:
        text.append("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    if multi:
        text.append(_front_line([t.number for t in pareto_front(study)]))
        return "\n".join(text)
    try:
        best = study.best_trial
        text.append(f"best: trial {best.number}, {metric}={format_value(best.value)}")
    except ValueError:
        text.append("best: none yet (no completed trial)")
    return "\n".join(text)


def _pruned_at(row: dict) -> str:
    if row["pruned_at_samples"] is not None:
        return f"{row['pruned_at_samples']:,} samples"
    return "-" if row["pruned_at_step"] is None else f"step {row['pruned_at_step']}"


def evidence_text(evidence: dict | None) -> str | None:
    """A pruned trial's evidence in a few words: its value against the bar, and the noise it was weighed by."""
    if not evidence or evidence.get("bar") is None:
        return None
    text = f"{format_value(evidence['value'])} vs bar {format_value(evidence['bar'])}"
    if evidence.get("uncertainty") is not None:
        text += f", SE {format_value(evidence['uncertainty'])} x {evidence.get('tolerance_se')}"
    return text


def _front_line(numbers: list[int]) -> str:
    if not numbers:
        return "pareto front: none yet (no completed trial)"
    listed = ", ".join(map(str, numbers))
    plural = "" if len(numbers) == 1 else "s"
    return f"pareto front: {len(numbers)} trial{plural}, best quality first: {listed}; export one with --trial N"


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
