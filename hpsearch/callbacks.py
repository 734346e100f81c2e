"""TrainerCallbacks: record the learning curve, report the objective to Optuna and prune at once."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from transformers import TrainerCallback

# Timing entries Trainer adds to every evaluation; they are not part of the learning curve.
_NOT_CURVE = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}


class OptunaReporter(TrainerCallback):
    """At every evaluation: append a curve point, report the objective keyed by step, maybe prune.

    Raising `optuna.TrialPruned` from `on_evaluate` leaves `Trainer.train()` at once, so a pruned
    trial trains no step past the evaluation that condemned it.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        objective_key: str,
        on_point: Callable[[dict], None] | None = None,
        divergence_factor: float | None = None,
    ) -> None:
        self.trial = trial
        self.objective_key = objective_key
        self.on_point = on_point
        self.curve: list[dict] = []
        self.training = True
        self._train_loss: tuple[int, float] | None = None
        self._first_loss: float | None = None
        self.divergence_factor = divergence_factor
        self.pruned_reason = "pruner"  # why a TrialPruned left train(): the pruner, or divergence

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        self._train_loss = (state.global_step, loss)
        if self._first_loss is None:
            self._first_loss = loss
        if self.divergence_factor is None or not self.training:
            return
        exploded = math.isfinite(self._first_loss) and loss > self.divergence_factor * self._first_loss
        if not math.isfinite(loss) or exploded:
            self.pruned_reason = f"diverged: train loss {loss:.4g} at step {state.global_step}" + (
                f" (first logged {self._first_loss:.4g})" if exploded else ""
            )
            raise optuna.TrialPruned(self.pruned_reason)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        step = state.global_step
        metrics = metrics or {}
        if self.objective_key not in metrics:
            raise KeyError(f"evaluation returned no {self.objective_key!r}; it returned {sorted(metrics)}")
        # The last logged train loss, and its step: the final evaluation can fall between two logs.
        loss_step, loss = self._train_loss or (None, None)
        point = {"step": step, "train_loss": loss, "train_loss_step": loss_step}
        point.update({k: float(v) for k, v in metrics.items() if k not in _NOT_CURVE and isinstance(v, (int, float))})
        point["epoch"] = round(float(state.epoch or 0.0), 4)  # Trainer.log adds an unrounded one
        if self.curve and self.curve[-1]["step"] == step:
            return  # the closing evaluation of a step already evaluated
        self.curve.append(point)
        value = point[self.objective_key]
        self.trial.report(value, step)
        if self.on_point is not None:
            self.on_point(point)
        # Trainer evaluates the last step inside train(); a trial trained to the end is not pruned.
        if self.training and step < state.max_steps and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")
