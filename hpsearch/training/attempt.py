"""One training pass of a trial: the plan it trains (its resolved settings), the pass's Trainer on a fresh
model with the reporter, the early stopper and the best-checkpoint saver as callbacks, and what the record
reads from the pass however it ends (training/trial.py runs it, again after an out-of-memory error)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpsearch.results.record import TrialAttr
from hpsearch.training import best_evaluation, lora, memory
from hpsearch.training.callbacks import EarlyStopping, OptunaReporter
from hpsearch.training.context import TrialContext
from hpsearch.training.distributed import RankAgreement
from hpsearch.training.schedule import EvaluationSchedule
from hpsearch.training.trainer import make_trainer


@dataclass(frozen=True)
class Plan:
    """A trial's resolved settings: the context of the model it trains and what it trains with."""

    ctx: TrialContext
    params: dict[str, Any]
    arguments: dict[str, Any]
    lora_settings: dict[str, Any] | None
    dropout: dict[str, float]
    train_dataset: Any  # None: the task's tokenized train split as it is (no augmentation)


@dataclass
class Attempt:
    """The training pass under way: what the record reads from it however it ends. Dropped (`drop`) before
    the next pass or trial, so nothing else holds the model."""

    trainer: Any = None
    reporter: OptunaReporter | None = None
    stopper: EarlyStopping | None = None
    result: Any = None  # Trainer.train()'s TrainOutput, once it returned
    train_started: float | None = None
    train_ended: float | None = None
    reported: set = field(default_factory=set)  # the points reported to Optuna, kept across attempts

    def drop(self) -> None:
        self.trainer = self.reporter = self.stopper = self.result = None


def build(
    trial: optuna.Trial,
    plan: Plan,
    arguments: dict[str, Any],
    output_dir: str,
    record: dict[str, Any],
    attempt: Attempt,
) -> None:
    """The attempt's Trainer, on a fresh model, with the reporter (and the early stopper) as callbacks."""
    from transformers import TrainingArguments

    ctx, spec = plan.ctx, plan.ctx.spec
    args = TrainingArguments(output_dir=output_dir, **arguments)
    record[TrialAttr.TRAINING_ARGUMENTS_ALL] = {k: v for k, v in args.to_dict().items() if k != "output_dir"}
    record[TrialAttr.DEVICE] = memory.device_name(args.device)
    memory.reset_peak_memory(args.device)
    train_rows = len(ctx.data.train if plan.train_dataset is None else plan.train_dataset)
    subsample = ctx.data.eval_subsample(spec.evaluation)
    schedule = EvaluationSchedule(spec.evaluation.every, train_rows, final_in_loop=subsample is None)
    eval_rows = len(ctx.data.eval if subsample is None else subsample)
    lead = ctx.ranks is None or ctx.ranks.lead  # the process that decides (the other ranks follow it)
    reporter = OptunaReporter(
        trial,
        spec.objective.key,
        divergence_factor=spec.divergence_factor if lead else None,
        report=spec.objective.cost is None and lead,
        schedule=schedule,
        eval_rows=eval_rows,
        reported=attempt.reported,
    )
    attempt.reporter = reporter
    callbacks = [schedule, reporter]  # the reporter before the stopper: a trial it prunes is pruned, not stopped
    if spec.early_stopping.enabled and lead:
        es = spec.early_stopping
        attempt.stopper = EarlyStopping(spec.objective.key, spec.objective.direction, es.patience, es.threshold)
        callbacks.append(attempt.stopper)
    if ctx.ranks is not None:  # rank 0's prune, divergence or stop, broadcast: every rank leaves at its step
        reporter.defer = True
        callbacks.append(RankAgreement(ctx.ranks, reporter, attempt.stopper))
    attempt.trainer = trainer = make_trainer(
        ctx.task,
        ctx.data,
        ctx.tokenizer,
        ctx.model_path,
        args,
        callbacks,
        train_dataset=plan.train_dataset,
        eval_dataset=subsample,
        lora_settings=plan.lora_settings,
        dropout=plan.dropout,
        length_split=spec.data.length_split,
    )
    record.update(lora.parameter_counts(trainer.model))
    record[TrialAttr.WEIGHTS_DTYPE] = str(next(trainer.model.parameters()).dtype).removeprefix("torch.")
    reporter.on_point = lambda point, t=trainer: ctx.progress.evaluated(trial.number, point, t.state.max_steps)
    reporter.on_note = lambda line: ctx.progress.say(f"trial {trial.number:>3}  note: {line}", always=True)
    if spec.objective.at == "best" and ctx.best_model_dir is not None:  # last: after the reporter, which may prune
        folder = Path(output_dir) / "best-checkpoint"
        trainer.add_callback(best_evaluation.BestCheckpoint(trial, spec.objective, folder, trainer.save_model))
    record[TrialAttr.CURVE] = reporter.curve
