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
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

import optuna
import torch

from hpsearch.data import augment
from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr
from hpsearch.search import space
from hpsearch.training import best_evaluation, closing, memory, models, scratch
from hpsearch.training.attempt import Attempt, Plan, build
from hpsearch.training.context import TrialContext
from hpsearch.training.memory import OutOfMemory
from hpsearch.training.trainer import confirmation_seed, on_gpu, training_arguments
from hpsearch.training.trial_record import INTERRUPTED, queue_rerun, record_run, record_where, save_record

if TYPE_CHECKING:  # the worker's progress lines; the trial only calls them
    pass

# Which process ran a trial (host and pid), recorded on it: sweeps span processes and machines. The ranks
# of a multi-device trial record the worker that owns it (WORKER_ENV), which outlives them.
WORKER_ENV = "HPSEARCH_WORKER"
WORKER = os.environ.get(WORKER_ENV) or f"{scratch.HOST}:{os.getpid()}"


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
    device = torch.device("cuda" if on_gpu(spec.train) else "cpu")
    record[TrialAttr.MEMORY_BASELINE_MB] = round(memory.memory_in_use_mb(device), 1)
    output_dir = str(scratch.folder(f"{spec.name}-trial{trial.number}"))
    attempt = Attempt()
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


def _resolve(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any]) -> Plan:
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
    return Plan(ctx, params, arguments, lora_settings, dropout, train_dataset)


def _train(trial: optuna.Trial, plan: Plan, output_dir: str, record: dict[str, Any], attempt: Attempt) -> None:
    """Train once, or again with half the micro-batch and twice the accumulation (the same effective
    batch) each time training runs out of memory; `split_batch` raises OutOfMemory at a micro-batch of 1."""
    arguments = plan.arguments
    while True:
        build(trial, plan, arguments, output_dir, record, attempt)
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


def _score(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any], attempt: Attempt) -> float:
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
