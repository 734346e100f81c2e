"""`objective.at: best`: which curve point is a trial's value, and the one checkpoint of that point's
weights that `model.save_best` keeps (saved during training, moved into place if the trial is the best)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from transformers import TrainerCallback

from hpsearch.results.record import CurveKey, TrialAttr
from hpsearch.spec.sections import ObjectiveSpec


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _better(value: float, than: float, maximize: bool) -> bool:
    return value > than if maximize else value < than


def best_point(curve: list[dict], key: str, maximize: bool) -> dict | None:
    """The curve point with the best finite `key`, the first of equal ones (fewer steps to the same
    score); None when no point has a finite value."""
    best = None
    for point in curve:
        if _finite(point.get(key)) and (best is None or _better(point[key], best[key], maximize)):
            best = point
    return best


def objective_value(curve: list[dict], objective: ObjectiveSpec, record: dict[str, Any]) -> float:
    """A trial's value: its last evaluation's, or with `at: best` its best evaluation's, whose step and
    samples go into `record`. No finite point at all: the last one's (NaN), which fails the trial."""
    point = best_point(curve, objective.key, objective.direction == "maximize") if objective.at == "best" else None
    if point is None:
        return curve[-1][objective.key]
    record[TrialAttr.BEST_AT_STEP] = point[CurveKey.STEP]
    record[TrialAttr.BEST_AT_SAMPLES] = point[CurveKey.SAMPLES]
    return point[objective.key]


def is_new_best(trial: optuna.Trial, value: float) -> bool:
    """Whether `value` beats every completed trial of the study (true for the first)."""
    try:
        best = trial.study.best_value
    except ValueError:  # no completed trial yet
        return True
    return _better(value, best, trial.study.direction == optuna.study.StudyDirection.MAXIMIZE)


class BestCheckpoint(TrainerCallback):
    """`model.save_best` with `objective.at: best`: at an evaluation that is the trial's best so far and
    beats the study's best, save the model to `folder`, over the one saved before (a worker runs one trial
    at a time and the folder lies in the trial's temporary output_dir, removed however the trial ends: at
    most one checkpoint per worker on disk). Place it after `OptunaReporter`: an evaluation that prunes
    saves nothing. The rule is `best_point`'s, so the last weights saved are the trial's value's."""

    def __init__(self, trial: optuna.Trial, objective: ObjectiveSpec, folder: Path, save: Callable[[str], None]):
        self.trial = trial
        self.key = objective.key
        self.maximize = objective.direction == "maximize"
        self.folder = folder
        self.save = save  # Trainer.save_model: the same files as the final weights' save
        self.best: float | None = None  # the trial's best value so far
        self.saved: float | None = None  # the value of the weights in `folder`

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.key)
        if not _finite(value) or (self.best is not None and not _better(value, self.best, self.maximize)):
            return
        self.best = float(value)
        if is_new_best(self.trial, self.best):  # else no later result of this trial can need these weights
            self.save(str(self.folder))
            self.saved = self.best


def save_model(trainer, folder: Path) -> None:
    """Save the trial's model for `model.save_best` in `folder` (empty or absent): the final weights, or
    with a `BestCheckpoint` the best evaluation's, moved from where it saved them."""
    checkpoint = next((c for c in trainer.callback_handler.callbacks if isinstance(c, BestCheckpoint)), None)
    if checkpoint is None:
        trainer.save_model(str(folder))
        return
    if checkpoint.saved is None or not checkpoint.folder.is_dir():
        # A new best was saved when it was evaluated (the study's best only improves): a bug if not.
        raise RuntimeError(f"no checkpoint of the best evaluation in {checkpoint.folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(checkpoint.folder, folder)
