"""One trial = one fine-tuning job: params -> TrainingArguments -> Trainer.train() -> objective.

Everything that happened is recorded on the Optuna trial as user attributes, whatever the outcome:
the complete training arguments, the learning curve, wall time, throughput, peak memory, device,
seed and, for a failed trial, the error.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
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
from hpsearch.search import space
from hpsearch.spec import SETTING_PARAMS, Spec

if TYPE_CHECKING:  # the worker's progress lines; the trial only calls them
    from hpsearch.orchestration.progress import Progress
from hpsearch.training import lora, models
from hpsearch.training.callbacks import DerivedMetrics, EarlyStopping, OptunaReporter
from hpsearch.training.generation import GeneratedMetrics

# What hpsearch sets unless the study's `train` section says otherwise.
DEFAULT_TRAINING_ARGUMENTS: dict[str, Any] = {
    "eval_strategy": "steps",
    "eval_steps": 0.1,  # a float below 1 is a fraction of the training steps: ten evaluations
    "save_strategy": "no",  # checkpoints are not kept; model.save_best keeps the best model
    "report_to": "none",  # the record is the Optuna storage
    "disable_tqdm": True,
    "logging_nan_inf_filter": False,  # a NaN loss must be seen, not averaged away
    "logging_first_step": True,  # the divergence guard compares the loss with the first step's
    "per_device_eval_batch_size": 64,
    "seed": 42,
}


# Which process ran a trial (host and pid), recorded on it: sweeps span processes and machines.
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def training_arguments(spec: Spec, params: dict[str, Any]) -> dict[str, Any]:
    """The trial's TrainingArguments (all but output_dir): defaults, then `train`, then the params
    (hpsearch's own settings, `spec.SETTING_PARAMS`: finetune, lora_*, dropout, model,
    augmentation_probability, are not TrainingArguments)."""
    params = {k: v for k, v in params.items() if k not in SETTING_PARAMS}
    args = {**DEFAULT_TRAINING_ARGUMENTS, **spec.train, **params}
    args.update(mixed_precision(args))
    # Log the train loss exactly when evaluating, so every curve point carries both losses.
    if "logging_strategy" not in spec.train and "logging_steps" not in spec.train:
        args["logging_strategy"] = args["eval_strategy"]
        if args["eval_strategy"] == "steps":
            args["logging_steps"] = args.get("eval_steps") or 500
    return args


def mixed_precision(args: dict[str, Any]) -> dict[str, bool]:
    """On a GPU, train in bf16 where the GPU has it, else fp16, unless the study sets either (or
    use_cpu). Chosen where the sweep runs, and written into the trial's (and the export's) arguments."""
    if "bf16" in args or "fp16" in args or args.get("use_cpu") or not torch.cuda.is_available():
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares; built once per worker."""

    spec: Spec
    task: Any  # a module of hpsearch.tasks
    data: Any  # the task's TaskData
    tokenizer: Any
    model_path: str
    best_model_dir: Path | None
    progress: Progress
    raw: Any = None  # the data's RawData: augmentation re-encodes its train split per trial
    dropout_attributes: tuple[str, ...] = ()
    """The dropout probabilities of the model's config, set when the study sets dropout."""
    choices: dict[str, TrialContext] = field(default_factory=dict)
    """search.model: each choice's own context (its model, tokenizer and tokenized data)."""

    def for_params(self, params: dict[str, Any]) -> TrialContext:
        """The context of the model a trial trains: its searched choice's, else this one."""
        return self.choices[params["model"]] if "model" in params else self


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets this process's peak resident set size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _process_memory_mb(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux): VmHWM (peak), VmRSS (now)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = _process_memory_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_in_use_mb(device: torch.device) -> float:
    """What the process holds now: tensors on the GPU, or the resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    now = _process_memory_mb("VmRSS")
    return now if now is not None else float("nan")


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _is_new_best(trial: optuna.Trial, value: float) -> bool:
    try:
        best = trial.study.best_value
    except ValueError:  # no completed trial yet
        return True
    return value > best if trial.study.direction == optuna.study.StudyDirection.MAXIMIZE else value < best


def make_trainer(
    task,
    task_data,
    tokenizer,
    model_path: str,
    args,
    callbacks=(),
    train_dataset=None,
    eval_dataset=None,
    lora_settings: dict[str, Any] | None = None,
    dropout: dict[str, float] | None = None,
):
    """A Trainer on a fresh model (a new classification head is drawn from `args.seed`), wrapped in a
    LoRA adapter when `lora_settings` says so; `dropout` overrides the config's dropout probabilities."""
    from transformers import PrinterCallback, Trainer, set_seed

    set_seed(args.seed)
    dtype = weights_dtype(lora_settings, args.device)
    model = task.build_model(model_path, task_data.labels, dtype=dtype, **(dropout or {}))
    if lora_settings is not None:
        model = lora.wrap(model, lora_settings, task.PEFT_TASK_TYPE)
    if getattr(task, "derived_metrics", None) is not None:  # before the reporter reads the metrics
        callbacks = [DerivedMetrics(task.derived_metrics), *callbacks]
    if task_data.generation is not None:  # so are the scores of generated outputs
        callbacks = [GeneratedMetrics(task_data.generation, tokenizer), *callbacks]
    if getattr(task, "COLLATOR_TAKES_MODEL", False):  # it builds the decoder's inputs with the model (seq2seq)
        collate = task.collator(tokenizer, model)
    else:
        collate = task.collator(tokenizer)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=task_data.train if train_dataset is None else train_dataset,
        eval_dataset=task_data.eval if eval_dataset is None else eval_dataset,
        data_collator=collate,
        compute_metrics=task.compute_metrics,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # our progress lines replace its log dicts
    return trainer


def _generated_examples(trainer) -> list[dict[str, str]]:
    """A few inputs, references and outputs of the last evaluation, when the trial generates."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, GeneratedMetrics):
            return callback.examples
    return []


def weights_dtype(lora_settings: dict[str, Any] | None, device: torch.device) -> torch.dtype | str:
    """The dtype the model's weights are loaded in. transformers loads a checkpoint in the dtype it was
    saved in (bf16 for most LLMs): trained in place, AdamW's small updates would round away, so the
    weights that train are fp32 and mixed precision is autocast over them. A LoRA adapter's frozen
    base keeps the checkpoint's dtype on a GPU (half the memory; peft keeps the adapter in fp32)."""
    if lora_settings is not None and device.type == "cuda":  # the trial's device (use_cpu on a GPU box: fp32)
        return "auto"
    return torch.float32


class OutOfMemory(RuntimeError):
    """Out of memory even at a per-device batch of 1: the trial fails with reason `oom`."""


def _split_batch(args_dict: dict[str, Any], record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """After an out-of-memory error: half the per-device batch, twice the gradient accumulation,
    so the effective batch the model sees stays the same, and half the eval batch; each step down is
    recorded."""
    batch = args_dict["per_device_train_batch_size"]
    accumulation = args_dict.get("gradient_accumulation_steps", 1)
    retries = record.setdefault("oom_retries", [])
    eval_batch = args_dict.get("per_device_eval_batch_size", 8)
    retries.append(
        {
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": accumulation,
            "per_device_eval_batch_size": eval_batch,
        }
    )
    if batch <= 1:
        raise OutOfMemory(f"oom: out of memory at per_device_train_batch_size=1: {str(exc).splitlines()[0][:200]}")
    return {
        **args_dict,
        "per_device_train_batch_size": batch // 2,
        "gradient_accumulation_steps": accumulation * 2,
        # Evaluation (and generation) runs inside train() too, and may be what ran out: it halves as well.
        "per_device_eval_batch_size": max(eval_batch // 2, 1),
    }


def _save_record(trial: optuna.Trial, record: dict[str, Any], progress: Progress) -> None:
    """Write the record as user attributes; a failure here must not hide the trial's own outcome."""
    for key, value in record.items():
        try:
            trial.set_user_attr(key, json.loads(json.dumps(value, default=str)))
        except Exception as exc:  # e.g. the database is locked past its timeout
            progress.say(f"trial {trial.number:>3}  warning: could not record {key}: {exc}", always=True)


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float | tuple[float, float]:
    """Optuna objective: fine-tune once with the trial's parameters and return the final metric;
    with objective.cost, (metric, cost), the cost being the figure the trial records under that name."""
    record: dict[str, Any] = {}
    value = _fine_tune(trial, ctx, record)  # the record is complete (and saved) once it returns
    cost = ctx.spec.objective.cost
    return value if cost is None else (value, float(record[cost]))


def _fine_tune(trial: optuna.Trial, ctx: TrialContext, record: dict[str, Any]) -> float:
    """Fine-tune once and return the final metric; everything that happened goes into `record`."""
    from transformers import TrainingArguments

    spec = ctx.spec
    record.update(data_fingerprint=ctx.data.fingerprint, worker=WORKER)
    # Memory held before the trial starts; `memory_after_mb` must come back to it (nothing leaks).
    device = torch.device("cuda" if torch.cuda.is_available() and not spec.train.get("use_cpu") else "cpu")
    record["memory_baseline_mb"] = round(_memory_in_use_mb(device), 1)
    output_dir = tempfile.mkdtemp(prefix=f"hpsearch-{spec.name}-trial{trial.number}-")
    trainer = reporter = stopper = result = None
    started = time.perf_counter()
    train_started = train_ended = None
    try:
        params = space.suggest(trial, spec.search)
        ctx = ctx.for_params(params)
        record["model"] = ctx.model_path
        dropout = models.dropout_overrides(ctx.dropout_attributes, spec.model.dropout_for(params))
        if dropout:
            record["dropout"] = dropout
        args_dict = training_arguments(spec, params)
        record.update(training_arguments=args_dict, seed=args_dict["seed"])
        lora_settings = spec.finetune.settings(params)
        record["finetune"] = "full" if lora_settings is None else {"method": "lora", **lora_settings}
        train_dataset, augmentation = augment.for_trial(
            spec, ctx.task, ctx.raw, ctx.tokenizer, ctx.data.labels, params, args_dict["seed"]
        )
        if augmentation is not None:
            record["augmentation"] = augmentation
        ctx.progress.started(trial.number, params)
        while True:  # one pass, or more when out of memory: then half the micro-batch, twice the accumulation
            args = TrainingArguments(output_dir=output_dir, **args_dict)
            record["training_arguments_all"] = {k: v for k, v in args.to_dict().items() if k != "output_dir"}
            record["device"] = _device_name(args.device)
            _reset_peak_memory(args.device)
            reporter = OptunaReporter(
                trial, spec.objective.key, divergence_factor=spec.divergence_factor, report=spec.objective.cost is None
            )
            callbacks = [reporter]  # the reporter first: a trial it prunes is pruned, not stopped early
            if spec.early_stopping.enabled:
                es = spec.early_stopping
                stopper = EarlyStopping(spec.objective.key, spec.objective.direction, es.patience, es.threshold)
                callbacks.append(stopper)
            trainer = make_trainer(
                ctx.task,
                ctx.data,
                ctx.tokenizer,
                ctx.model_path,
                args,
                callbacks,
                train_dataset=train_dataset,
                lora_settings=lora_settings,
                dropout=dropout,
            )
            record.update(lora.parameter_counts(trainer.model))
            record["weights_dtype"] = str(next(trainer.model.parameters()).dtype).removeprefix("torch.")
            reporter.on_point = lambda point, t=trainer: ctx.progress.evaluated(trial.number, point, t.state.max_steps)
            record["curve"] = reporter.curve
            train_started = time.perf_counter()
            try:
                result = trainer.train()
            except torch.OutOfMemoryError as exc:
                traceback.clear_frames(exc.__traceback__)  # its frames hold the failed attempt's model
                trainer = reporter = stopper = None
                _free_memory()
                args_dict = _split_batch(args_dict, record, exc)  # raises OutOfMemory at a micro-batch of 1
                record["training_arguments"] = args_dict
                continue
            train_ended = time.perf_counter()
            break
        reporter.training = False
        if stopper is not None and stopper.stopped_at is not None:
            # Stopped in on_evaluate, so the last curve point already scores the weights it stopped with.
            record["early_stopped_at_step"] = stopper.stopped_at
        if not reporter.curve or reporter.curve[-1]["step"] != trainer.state.global_step:
            trainer.evaluate()  # score the final weights, not those of the last scheduled evaluation
        record["train_samples_per_second"] = result.metrics.get("train_samples_per_second")
        record["train_loss"] = result.metrics.get("train_loss")
        value = reporter.curve[-1][spec.objective.key]
        if not math.isfinite(value):
            raise FloatingPointError(f"{spec.objective.key} is {value} at the end of training")
        if ctx.best_model_dir is not None and _is_new_best(trial, value):
            # A new best replaces the old wholesale: another model choice, or an adapter instead of
            # full weights, must not find the previous best's files beside its own.
            shutil.rmtree(ctx.best_model_dir, ignore_errors=True)
            trainer.save_model(str(ctx.best_model_dir))
            ctx.tokenizer.save_pretrained(str(ctx.best_model_dir))
            record["saved_model"] = str(ctx.best_model_dir)
            trial.study.set_user_attr("best_model_trial", trial.number)
        return value
    except optuna.TrialPruned:
        record["prune_reason"] = reporter.pruned_reason
        raise
    except KeyboardInterrupt:
        record.update(error="interrupted", interrupted=True)
        # Queued by the process it happened in, so exactly one re-run exists whatever the workers.
        trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
        raise
    except OutOfMemory as exc:
        record.update(error=str(exc), fail_reason="oom")
        raise
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        record["traceback"] = traceback.format_exc()[-4000:]
        raise
    finally:
        record["wall_time_s"] = round(time.perf_counter() - started, 3)
        record["device_seconds"] = record["wall_time_s"]  # a trial holds one device for its whole run
        if "curve" in record:  # training started: the gap at its last evaluation (None without one)
            record["train_eval_gap"] = record["curve"][-1].get("train_eval_gap") if record["curve"] else None
        if trainer is not None:
            state = trainer.state
            record.update(steps_trained=state.global_step, max_steps=state.max_steps)
            if train_started is not None:
                # Trainer's own figure when training finished; for a pruned trial, the same measure by hand.
                train_seconds = (train_ended or time.perf_counter()) - train_started
                record["train_seconds"] = round(train_seconds, 3)
                if record.get("train_samples_per_second") is None and train_seconds > 0:
                    per_step = trainer.args.train_batch_size * trainer.args.gradient_accumulation_steps
                    record["train_samples_per_second"] = round(state.global_step * per_step / train_seconds, 3)
            record["peak_memory_mb"] = round(_peak_memory_mb(trainer.args.device), 1)
            examples = _generated_examples(trainer)
            if examples:
                record["generated_examples"] = examples
            device = trainer.args.device
        # Free the model and optimizer before the next trial, and record what is still held. An
        # exception on its way out holds the training frames (and so the model): clear their locals.
        trainer = reporter = stopper = result = None
        if sys.exc_info()[1] is not None:
            traceback.clear_frames(sys.exc_info()[1].__traceback__)
        _free_memory()
        record["memory_after_mb"] = round(_memory_in_use_mb(device), 1)
        _save_record(trial, record, ctx.progress)
        shutil.rmtree(output_dir, ignore_errors=True)
