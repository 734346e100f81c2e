"""One trial = one fine-tuning job: params -> TrainingArguments -> Trainer.train() -> objective.

Everything that happened is recorded on the Optuna trial as user attributes (hpsearch.results.record),
whatever the outcome: the training arguments, the learning curve, times, memory, device, seed and, for
a failed trial, the error. It reads in three steps: resolve the arguments, train (retrying with a
smaller micro-batch when out of memory), record.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import torch

from hpsearch.data import augment
from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr
from hpsearch.search import space
from hpsearch.spec import Spec
from hpsearch.tasks import Task
from hpsearch.tasks.task_data import TaskData
from hpsearch.training import best_evaluation, closing, lora, memory, models
from hpsearch.training.callbacks import EarlyStopping, OptunaReporter
from hpsearch.training.distributed import RankAgreement, Ranks
from hpsearch.training.memory import OutOfMemory
from hpsearch.training.schedule import EvaluationSchedule
from hpsearch.training.trainer import confirmation_seed, make_trainer, training_arguments
from hpsearch.training.trial_record import INTERRUPTED, queue_rerun, record_run, record_where, save_record

if TYPE_CHECKING:  # the worker's progress lines; the trial only calls them
    from hpsearch.orchestration.progress import Progress

# Which process ran a trial (host and pid), recorded on it: sweeps span processes and machines. The ranks
# of a multi-device trial record the worker that owns it (WORKER_ENV), which outlives them.
WORKER_ENV = "HPSEARCH_WORKER"
WORKER = os.environ.get(WORKER_ENV) or f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares; built once per worker."""

    spec: Spec
    task: Task
    data: TaskData
    tokenizer: Any
    model_path: str
    best_model_dir: Path | None
    progress: Progress
    raw: Any = None  # the data's RawData: augmentation re-encodes its train split per trial
    dropout_attributes: tuple[str, ...] = ()
    """The dropout probabilities of the model's config, set when the study sets dropout."""
    choices: dict[str, TrialContext] = field(default_factory=dict)
    """search.model: each choice's own context (its model, tokenizer and tokenized data)."""
    ranks: Ranks | None = None
    """A multi-device trial's rank (distributed.py); None: the trial trains in this process alone."""

    def for_params(self, params: dict[str, Any]) -> TrialContext:
        """The context of the model a trial trains: its searched choice's, else this one."""
        return self.choices[params["model"]] if "model" in params else self


@dataclass(frozen=True)
class _Plan:
    """A trial's resolved settings: the context of the model it trains and what it trains with."""

    ctx: TrialContext
    params: dict[str, Any]
    arguments: dict[str, Any]
    lora_settings: dict[str, Any] | None
    dropout: dict[str, float]
    train_dataset: Any  # None: the task's tokenized train split as it is (no augmentation)


@dataclass
class _Attempt:
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


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float | tuple[float, float]:
    """Optuna objective: fine-tune once with the trial's parameters and return the final metric;
    with objective.cost, (metric, cost), the cost being the figure the trial records under that name."""
    record: dict[str, Any] = {}
    value = _fine_tune(trial, ctx, record)  # the record is complete (and saved) once it returns
    cost = ctx.spec.objective.cost
    return value if cost is None else (value, float(record[TrialAttr(cost)]))


def _fine_tune(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any]) -> float:
    """Fine-tune once and return the final metric; everything that happened goes into `record`."""
    spec = ctx.spec
    record[TrialAttr.DATA_FINGERPRINT] = ctx.data.fingerprint
    record_where(trial, record, WORKER)
    # Memory held before the trial starts; `memory_after_mb` must come back to it (nothing leaks).
    device = torch.device("cuda" if torch.cuda.is_available() and not spec.train.get("use_cpu") else "cpu")
    record[TrialAttr.MEMORY_BASELINE_MB] = round(memory.memory_in_use_mb(device), 1)
    output_dir = tempfile.mkdtemp(prefix=f"hpsearch-{spec.name}-trial{trial.number}-")
    attempt = _Attempt()
    started = time.perf_counter()
    try:
        plan = _resolve(trial, ctx, record)
        plan.ctx.progress.started(trial.number, plan.params)
        _train(trial, plan, output_dir, record, attempt)
        return _score(trial, plan.ctx, record, attempt)
    except optuna.TrialPruned:
        record[TrialAttr.PRUNE_REASON] = attempt.reporter.pruned_reason
        if attempt.reporter.evidence is not None:
            record[TrialAttr.PRUNE_EVIDENCE] = attempt.reporter.evidence
        raise
    except KeyboardInterrupt:
        record.update(INTERRUPTED)
        queue_rerun(trial.study, trial)  # by the process it happened in: one re-run whatever the workers
        raise
    except OutOfMemory as exc:
        record.update({TrialAttr.ERROR: str(exc), TrialAttr.FAIL_REASON: "oom"})
        raise
    except Exception as exc:
        record[TrialAttr.ERROR] = f"{type(exc).__name__}: {exc}"[:2000]
        record[TrialAttr.TRACEBACK] = traceback.format_exc()[-4000:]
        raise
    finally:
        closing.hold()  # a signal from here on waits until the record and Optuna's tell are written
        try:
            record_run(record, attempt, time.perf_counter() - started)
        except Exception as exc:  # what the run took is secondary: the record must still be saved
            record[TrialAttr.ERROR] = record.get(TrialAttr.ERROR) or f"recording the run failed: {exc}"
        if attempt.trainer is not None:
            device = attempt.trainer.args.device
        # Free the model and optimizer before the next trial, and record what is still held. An
        # exception on its way out holds the training frames (and so the model): clear their locals.
        attempt.drop()
        if sys.exc_info()[1] is not None:
            traceback.clear_frames(sys.exc_info()[1].__traceback__)
        memory.free_memory()
        record[TrialAttr.MEMORY_AFTER_MB] = round(memory.memory_in_use_mb(device), 1)
        save_record(trial, record, ctx.progress)
        shutil.rmtree(output_dir, ignore_errors=True)


def _resolve(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any]) -> _Plan:
    """Draw the params and resolve what they mean: the model, its dropout, the training arguments, the
    fine-tuning method and the (augmented) train split."""
    spec = ctx.spec
    params = space.suggest(trial, spec.search)
    ctx = ctx.for_params(params)
    record[TrialAttr.MODEL] = ctx.model_path
    dropout = models.dropout_overrides(ctx.dropout_attributes, spec.model.dropout_for(params))
    if dropout:
        record[TrialAttr.DROPOUT] = dropout
    arguments = training_arguments(spec, params)
    if TrialAttr.CONFIRM_OF in trial.user_attrs:  # a confirmation: its config, another seed (`hpsearch confirm`)
        arguments.update(confirmation_seed(arguments, trial.user_attrs[TrialAttr.SEED]))
    record.update({TrialAttr.TRAINING_ARGUMENTS: arguments, TrialAttr.SEED: arguments["seed"]})
    lora_settings = spec.finetune.settings(params)
    record[TrialAttr.FINETUNE] = "full" if lora_settings is None else {"method": "lora", **lora_settings}
    train_dataset, augmentation = augment.for_trial(
        spec, ctx.task, ctx.raw, ctx.tokenizer, ctx.data.labels, params, arguments["seed"]
    )
    if augmentation is not None:
        record[TrialAttr.AUGMENTATION] = augmentation
    return _Plan(ctx, params, arguments, lora_settings, dropout, train_dataset)


def _train(trial: optuna.Trial, plan: _Plan, output_dir: str, record: dict[str, Any], attempt: _Attempt) -> None:
    """Train once, or again with half the micro-batch and twice the accumulation (the same effective
    batch) each time training runs out of memory; `split_batch` raises OutOfMemory at a micro-batch of 1."""
    arguments = plan.arguments
    while True:
        _build(trial, plan, arguments, output_dir, record, attempt)
        attempt.train_started = time.perf_counter()
        try:
            attempt.result = attempt.trainer.train()
        except torch.OutOfMemoryError as exc:
            if plan.ctx.ranks is not None:  # the other ranks are in DDP's all-reduce: no retry without them
                raise
            traceback.clear_frames(exc.__traceback__)  # its frames hold the failed attempt's model
            attempt.drop()
            memory.free_memory()
            arguments = memory.split_batch(arguments, record, exc)
            record[TrialAttr.TRAINING_ARGUMENTS] = arguments
            continue
        attempt.train_ended = time.perf_counter()
        return


def _build(
    trial: optuna.Trial,
    plan: _Plan,
    arguments: dict[str, Any],
    output_dir: str,
    record: dict[str, Any],
    attempt: _Attempt,
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
    if spec.objective.at == "best" and ctx.best_model_dir is not None:  # last: after the reporter, which may prune
        folder = Path(output_dir) / "best-checkpoint"
        trainer.add_callback(best_evaluation.BestCheckpoint(trial, spec.objective, folder, trainer.save_model))
    record[TrialAttr.CURVE] = reporter.curve


def _score(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any], attempt: _Attempt) -> float:
    """The objective of the final weights (evaluated again when the last scheduled evaluation came before
    the last step), or with objective.at: best the best evaluation's; a new best trial's model is saved
    when the study keeps it."""
    trainer, reporter, stopper = attempt.trainer, attempt.reporter, attempt.stopper
    reporter.training = False
    if stopper is not None and stopper.stopped_at is not None:
        # Stopped in on_evaluate, so the last curve point already scores the weights it stopped with.
        record[TrialAttr.EARLY_STOPPED_AT_STEP] = stopper.stopped_at
    evaluated_last = reporter.curve and reporter.curve[-1][CurveKey.STEP] == trainer.state.global_step
    if not evaluated_last or not reporter.schedule.final_in_loop:
        # Score the final weights, on the whole eval split (intermediate evaluations may use a subsample).
        if trainer.state.global_step >= trainer.state.max_steps:
            reporter.schedule.at_end()
        reporter.eval_rows, reporter.final = len(ctx.data.eval), True
        memory.evaluate_fitting(trainer, ctx.data.evaluated)
    record[TrialAttr.TRAIN_SAMPLES_PER_SECOND] = attempt.result.metrics.get("train_samples_per_second")
    record[TrialAttr.TRAIN_LOSS] = attempt.result.metrics.get("train_loss")
    key = ctx.spec.objective.key
    value = best_evaluation.objective_value(reporter.curve, ctx.spec.objective, record)
    if not math.isfinite(value):
        raise FloatingPointError(f"{key} is {value} at the end of training")
    if ctx.best_model_dir is not None and best_evaluation.is_new_best(trial, value):
        # A new best replaces the old wholesale: another model choice, or an adapter instead of
        # full weights, must not find the previous best's files beside its own.
        shutil.rmtree(ctx.best_model_dir, ignore_errors=True)
        best_evaluation.save_model(trainer, ctx.best_model_dir)
        ctx.tokenizer.save_pretrained(str(ctx.best_model_dir))
        record[TrialAttr.SAVED_MODEL] = str(ctx.best_model_dir)
        trial.study.set_user_attr(StudyAttr.BEST_MODEL_TRIAL, trial.number)
    return value
