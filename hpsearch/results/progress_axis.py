"""How a stored study's trials are read on the progress axis: where each trained to and its whole budget,
in training samples seen (studies since schema version 3) or optimizer steps (older studies). One home for
`status`, `report` and `simulate`."""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial

from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr
from hpsearch.spec.schema import SAMPLES_AXIS_SINCE, stored_version

SAMPLES, STEPS = "samples", "steps"


def of_study(user_attrs: dict[str, Any], trials: list[FrozenTrial]) -> str:
    """The study's axis: its stored spec's schema version says; a study stored without a spec (made by
    hand, or by Optuna alone) is read by its curves (steps only where none has a `samples` point)."""
    spec = user_attrs.get(StudyAttr.SPEC)
    if isinstance(spec, dict) and spec:
        return STEPS if stored_version(spec) < SAMPLES_AXIS_SINCE else SAMPLES
    curves = [c for t in trials if (c := curve(t))]
    return STEPS if curves and not any(CurveKey.SAMPLES in p for c in curves for p in c) else SAMPLES


def trained(t: FrozenTrial, axis: str) -> int | None:
    """The point of the axis the trial trained to: its last reported point, else its curve's last point,
    else (steps) the steps it recorded; None when it never got there."""
    if t.intermediate_values:
        return max(t.intermediate_values)
    keyed = [p[k] for p in curve(t) if isinstance(p.get(k := curve_key(axis)), int)]
    if keyed:
        return keyed[-1]
    steps = t.user_attrs.get(TrialAttr.STEPS_TRAINED)
    return steps if axis == STEPS and isinstance(steps, int) else None


def budget(t: FrozenTrial, axis: str) -> int | None:
    """The trial's whole budget on the axis. Steps: the `max_steps` it planned. Samples: the
    `budget_samples` it recorded; for a trial stored before that, its last point when it trained to its last
    step, else its last point plus the steps it had left times its samples per step (an estimate)."""
    max_steps = t.user_attrs.get(TrialAttr.MAX_STEPS)
    if axis == STEPS:
        return max_steps if isinstance(max_steps, int) else None
    recorded = t.user_attrs.get(TrialAttr.BUDGET_SAMPLES)
    if isinstance(recorded, int):
        return recorded
    at = trained(t, axis)
    points = curve(t)
    step = points[-1].get(CurveKey.STEP) if points else t.user_attrs.get(TrialAttr.STEPS_TRAINED)
    if at is None or not isinstance(max_steps, int) or not isinstance(step, int):
        return at
    return at + max(max_steps - step, 0) * samples_per_step(t)


def to_samples(t: FrozenTrial, at: int, axis: str) -> int:
    """A point of the axis in training samples (a step-keyed trial's steps times its effective batch)."""
    return at if axis == SAMPLES else at * samples_per_step(t)


def samples_per_step(t: FrozenTrial) -> int:
    """The trial's effective batch, from the arguments it trained with."""
    arguments = t.user_attrs.get(TrialAttr.TRAINING_ARGUMENTS) or {}
    batch = arguments.get("per_device_train_batch_size", 8)
    return int(batch) * int(arguments.get("gradient_accumulation_steps", 1))


def first_budget(user_attrs: dict[str, Any], trials: list[FrozenTrial], axis: str) -> int | None:
    """The budget a pruner's fractional resources (min_resource, max_resource) are resolved against: the one
    the run stored (`pruner_budget`, the first trial to start training), else the budget of the first trial
    in trial order that has one (the same rule the run applies)."""
    stored = user_attrs.get(StudyAttr.PRUNER_BUDGET)
    if axis == SAMPLES and isinstance(stored, dict) and isinstance(stored.get(SAMPLES), int):
        return stored[SAMPLES]
    return next((b for t in sorted(trials, key=lambda t: t.number) if (b := budget(t, axis))), None)


def curve(t: FrozenTrial) -> list[dict]:
    """The trial's stored curve (its `curve` user attribute's points), or [] when it has none."""
    stored = t.user_attrs.get(TrialAttr.CURVE)
    return [p for p in stored if isinstance(p, dict)] if isinstance(stored, list) else []


def curve_key(axis: str) -> str:
    """The key of a curve point's place on the axis."""
    return CurveKey.SAMPLES if axis == SAMPLES else CurveKey.STEP
