"""TrainerCallbacks: record the learning curve, report the objective to Optuna and prune at once;
stop a trial early whose objective stopped improving."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from transformers import TrainerCallback

from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr
from hpsearch.search.noise import NoiseAwarePruner
from hpsearch.training.schedule import EvaluationSchedule

# Timing entries Trainer adds to every evaluation; they are not part of the learning curve.
_NOT_CURVE = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}


class OptunaReporter(TrainerCallback):
    """At every evaluation: append a curve point, report the objective keyed by the progress axis
    (training samples seen, the schedule's point), maybe prune.

    Raising `optuna.TrialPruned` from `on_evaluate` leaves `Trainer.train()` at once, so a pruned
    trial trains no step past the evaluation that condemned it. With `report=False` (a study with a
    cost objective: Optuna has no `Trial.report` for several objectives) it only records the curve
    and guards against divergence, which still prunes.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        objective_key: str,
        on_point: Callable[[dict], None] | None = None,
        divergence_factor: float | None = None,
        report: bool = True,
        schedule: EvaluationSchedule | None = None,
        eval_rows: int | None = None,
        reported: set[int] | None = None,
    ) -> None:
        self.trial = trial
        self.schedule = schedule
        self.eval_rows = eval_rows  # the rows the coming evaluation scores (a subsample's, or the split's)
        self.evidence: dict | None = None  # the pruned trial's value, bar and uncertainty
        self.spared: list[dict] = []  # where the pruner would have pruned but the gap was within noise
        self.final = False  # the coming evaluation scores the final weights on the whole eval split
        # The points reported so far, across this trial's attempts: after an out-of-memory retry the new
        # attempt's points up to the last one reported are not reported again (Optuna keeps the first).
        self.reported = set() if reported is None else reported
        self.report = report
        self.objective_key = objective_key
        self.on_point = on_point
        self.on_note: Callable[[str], None] | None = None  # a line for the person running the sweep
        self.curve: list[dict] = []
        self.training = True
        self._train_loss: tuple[int, float] | None = None
        self._first_loss: float | None = None
        self.divergence_factor = divergence_factor
        self.pruned_reason = "pruner"  # why a TrialPruned left train(): the pruner, or divergence
        # On rank 0 of a multi-device trial: keep the prune in `pending` instead of raising it, for
        # distributed.RankAgreement to broadcast first (every rank then leaves at this step).
        self.defer = False
        self.pending: optuna.TrialPruned | None = None

    def _prune(self, reason: str) -> None:
        if not self.defer:
            raise optuna.TrialPruned(reason)
        self.pending = optuna.TrialPruned(reason)

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
            self._prune(self.pruned_reason)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        step = state.global_step
        metrics = metrics or {}
        if self.objective_key not in metrics:
            raise KeyError(f"evaluation returned no {self.objective_key!r}; it returned {sorted(metrics)}")
        # The last logged train loss, and its step: the final evaluation can fall between two logs.
        loss_step, loss = self._train_loss or (None, None)
        point = {CurveKey.STEP: step, CurveKey.SAMPLES: self._point(state)}
        point.update(
            {CurveKey.TRAIN_LOSS: loss, CurveKey.TRAIN_LOSS_STEP: loss_step, CurveKey.EVAL_ROWS: self.eval_rows}
        )
        point.update({k: float(v) for k, v in metrics.items() if k not in _NOT_CURVE and isinstance(v, (int, float))})
        point[CurveKey.EPOCH] = round(float(state.epoch or 0.0), 4)  # Trainer.log adds an unrounded one
        point[CurveKey.TRAIN_EVAL_GAP] = train_eval_gap(point)
        if self.curve and self.curve[-1][CurveKey.STEP] == step:
            if not self.final:
                return  # the closing evaluation of a step already evaluated
            self.curve.pop()  # the same weights on the whole split replace the subsample's point
        self.curve.append(point)
        at = point[CurveKey.SAMPLES]
        fresh = at not in self.reported
        if self.report and fresh:
            self.reported.add(at)
            self.trial.report(point[self.objective_key], at)
        if self.on_point is not None:
            self.on_point(point)
        # Trainer evaluates the last step inside train(); a trial trained to the end is not pruned.
        if self.report and fresh and self.training and step < state.max_steps and self._should_prune(at, point):
            self._prune(f"pruned at {at} samples")

    def _point(self, state) -> int:
        """The evaluation's place on the progress axis (a schedule's point, else the step)."""
        return self.schedule.point if self.schedule is not None else state.global_step

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.report or self.schedule is None:  # not reporting: no pruner consults it
            return
        budget = self.schedule.budget  # the schedule's on_train_begin ran first
        self.trial.set_user_attr(TrialAttr.BUDGET_SAMPLES, budget)
        pruner = self.trial.study.pruner
        if not isinstance(pruner, NoiseAwarePruner):
            return
        if pruner.fractions:
            pruner.observe_budget(study_budget(self.trial.study, budget, self.trial.number))
        self._note_unprunable(pruner, budget)

    def _note_unprunable(self, pruner: NoiseAwarePruner, budget: int) -> None:
        """Say (once a process) when the pruner cannot act on this trial: its first rung or warm-up lies beyond
        the trial's last evaluation before its end (a study file's resource larger than its trials' budget)."""
        first, last = pruner.first_judged(), self.schedule.last_intermediate
        if first is None or pruner.noted_unprunable or (last is not None and last >= first[0]):
            return
        pruner.noted_unprunable = True
        where = "only at its end" if last is None else f"last before its end at {last} of its {budget} samples"
        if self.on_note is not None:
            self.on_note(
                f"the pruner cannot prune this trial: it judges from {first[0]} samples on (pruner.{first[1]}), "
                f"and the trial is evaluated {where} (evaluation.every)"
            )

    def _should_prune(self, at: int, point: dict) -> bool:
        pruner = self.trial.study.pruner
        if isinstance(pruner, optuna.pruners.NopPruner):
            return False  # it never prunes: spare the storage read should_prune makes
        if not isinstance(pruner, NoiseAwarePruner):
            return self.trial.should_prune()
        prune, decision = pruner.judge(
            self.trial, at, point.get(f"{self.objective_key}_se"), point.get(CurveKey.EVAL_ROWS)
        )
        if decision is not None and not prune:
            self.spared.append(decision)
        if prune:
            self.evidence = decision
        return prune


def study_budget(study: optuna.Study, samples: int, number: int) -> int:
    """The budget a pruner's fractional resources resolve against, one for the whole study: the one stored in
    it (`StudyAttr.PRUNER_BUDGET`), which the first trial to start training writes (trial `number`, of
    `samples`), so every process, resume and `hpsearch simulate` places the rungs alike."""
    stored = study.user_attrs.get(StudyAttr.PRUNER_BUDGET)
    if not isinstance(stored, dict):
        study.set_user_attr(StudyAttr.PRUNER_BUDGET, {"samples": samples, "trial": number})
        stored = study.user_attrs[StudyAttr.PRUNER_BUDGET]  # two processes that wrote at once: the last one's
    return int(stored["samples"])


def train_eval_gap(point: dict) -> float | None:
    """eval_loss - train_loss of a curve point; None unless both are finite numbers."""
    train, evaluated = point.get(CurveKey.TRAIN_LOSS), point.get(CurveKey.EVAL_LOSS)
    if not all(_finite(x) for x in (train, evaluated)):
        return None
    return float(evaluated) - float(train)


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class EarlyStopping(TrainerCallback):
    """Stop training after `patience` evaluations in a row that did not improve the objective.

    An evaluation improves when it beats the reference value by more than `threshold` (in the
    metric's units, in the study's direction); the first evaluation sets the reference, and each
    improvement moves it. A NaN never improves. Place it after `OptunaReporter`: the reporter may
    prune at the same evaluation (raising leaves `train()` before this runs), so a trial the pruner
    condemns is pruned, not stopped. Stopping sets `control.should_training_stop`: Trainer leaves
    its loop after this evaluation, so the trial's last curve point is at the step it stopped at and
    its objective is the evaluation of the weights it stopped with.
    """

    def __init__(self, objective_key: str, direction: str, patience: int, threshold: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.objective_key = objective_key
        self.maximize = direction == "maximize"
        self.patience = patience
        self.threshold = threshold
        self.reference: float | None = None
        self.waited = 0  # evaluations since the last improvement
        self.stopped_at: int | None = None  # the step training stopped at, before its last step
        self._last_step: int | None = None

    def _improves(self, value: float) -> bool:
        if self.maximize:
            return value - self.reference > self.threshold
        return self.reference - value > self.threshold

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        step = state.global_step
        if self.stopped_at is not None or step == self._last_step or step >= state.max_steps:
            return  # stopped already; a closing evaluation of a step already counted; or training is over
        self._last_step = step
        value = (metrics or {}).get(self.objective_key)
        value = float(value) if _finite(value) else math.nan
        if self.reference is None or (not math.isfinite(self.reference) and math.isfinite(value)):
            self.reference, self.waited = value, 0
            return
        if math.isfinite(value) and self._improves(value):
            self.reference, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.stopped_at = step
            control.should_training_stop = True


class StopAtStep(TrainerCallback):
    """Stop training at a given optimizer step, the schedule unchanged: `hpsearch train` ends a trial
    that stopped early where the trial ended."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


class DerivedMetrics(TrainerCallback):
    """Adds a task's metrics computed from the others (perplexity from the eval loss) to each
    evaluation's metrics, before the reporter reads them."""

    def __init__(self, derive: Callable[[dict], dict]) -> None:
        self.derive = derive

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics is not None:
            metrics.update(self.derive(metrics))
        return control
