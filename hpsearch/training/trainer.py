"""A trial's TrainingArguments (hpsearch's defaults, the study's `train`, the trial's params) and the
Trainer that runs them: a fresh model, its LoRA adapter, the task's collator and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpsearch.spec import SETTING_PARAMS, Spec
from hpsearch.spec.training_args import OLD_NAMES
from hpsearch.tasks import Task
from hpsearch.tasks.task_data import TaskData
from hpsearch.training import lora
from hpsearch.training.accumulation import match_accumulation
from hpsearch.training.callbacks import DerivedMetrics
from hpsearch.training.generation import GeneratedMetrics
from hpsearch.training.length_split import trainer_class
from hpsearch.training.random_state import evaluate_aside

# What hpsearch sets unless the study's `train` section says otherwise.
DEFAULT_TRAINING_ARGUMENTS: dict[str, Any] = {
    # Evaluation (and the train loss's log) is scheduled on samples seen by training.schedule, not by Trainer.
    "eval_strategy": "no",
    "logging_strategy": "no",
    "save_strategy": "no",  # checkpoints are not kept; model.save_best keeps the best model
    "report_to": "none",  # the record is the Optuna storage
    "disable_tqdm": True,
    "logging_nan_inf_filter": False,  # a NaN loss must be seen, not averaged away
    "logging_first_step": True,  # the divergence guard compares the loss with the first step's
    "per_device_eval_batch_size": 64,
    "seed": 42,
}


def training_arguments(spec: Spec, params: dict[str, Any]) -> dict[str, Any]:
    """The trial's TrainingArguments (all but output_dir): defaults, then `train`, then the params
    (hpsearch's own settings, `spec.SETTING_PARAMS`: finetune, lora_*, dropout, model,
    augmentation_probability, are not TrainingArguments)."""
    params = {k: v for k, v in params.items() if k not in SETTING_PARAMS}
    # On several ranks, Trainer multiplies the loss by their number to undo DDP's averaging of gradients, right
    # only for a loss summed over a batch's tokens: a classifier's mean loss (train and eval) would double.
    ranked = {"average_tokens_across_devices": False} if spec.resources.devices_per_trial > 1 else {}
    args = {**DEFAULT_TRAINING_ARGUMENTS, **ranked, **spec.train, **params}
    args.update(mixed_precision(args))
    if "logging_steps" in spec.train and "logging_strategy" not in spec.train:
        args["logging_strategy"] = "steps"  # logs more often than the evaluations, as asked
    return args


def confirmation_seed(arguments: dict[str, Any], seed: int) -> dict[str, int]:
    """What a confirmation trial changes in its config's arguments: the seed, which draws the new head's
    initialisation and the data order (a `data_seed` the study fixed moves with it, or the order would not)."""
    return {"seed": seed, **({"data_seed": seed} if arguments.get("data_seed") is not None else {})}


def on_gpu(train: dict[str, Any]) -> bool:
    """Whether a trial with these `train` settings (or TrainingArguments) trains on a GPU: one is there
    and `use_cpu` is not set."""
    return torch.cuda.is_available() and not train.get("use_cpu")


def mixed_precision(args: dict[str, Any]) -> dict[str, bool]:
    """On a GPU, train in bf16 where the GPU has it, else fp16, unless the study sets either (or
    use_cpu). Chosen where the sweep runs, and written into the trial's (and the export's) arguments."""
    if "bf16" in args or "fp16" in args or not on_gpu(args):
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


# /proc/cpuinfo flags of a CPU with bf16 arithmetic: x86's AVX512-BF16 and AMX, Arm's BF16 extension.
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_bf16() -> bool | None:
    """Whether this machine's CPU has bf16 arithmetic, from the kernel's CPU flags; None where there are
    none to read (not Linux). Without it, torch emulates bf16 in fp32 and rounds after every operation."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    flags = {flag for line in text.splitlines() if line.startswith(("flags", "Features")) for flag in line.split()}
    return bool(flags & CPU_BF16_FLAGS) if flags else None


def notes(spec: Spec) -> list[str]:
    """What validate and run say of a study that is not wrong but may not do what its author expects."""
    return [note for note in (cpu_bf16_note(spec), old_names_note(spec)) if note is not None]


def old_names_note(spec: Spec) -> str | None:
    """A line for a study that names an argument by transformers' old name (which still takes it, warning)."""
    renames = ", ".join(
        f"{section}.{old} to {new}"
        for section in ("train", "search")
        for old, new in OLD_NAMES.items()
        if old in getattr(spec, section)
    )
    if not renames:
        return None
    return f"note: {spec.source}: transformers takes these old names until version 6: rename {renames}"


def cpu_bf16_note(spec: Spec) -> str | None:
    """A line for a study that asks for bf16 (in `train` or as a searched choice) and would train on a
    CPU that has no bf16 arithmetic: a step there measured 13.7x the time of fp32 (BENCHMARKS.md)."""
    searched = spec.search.get("bf16")
    asked = spec.train.get("bf16") is True or (searched is not None and True in (searched.choices or ()))
    if not asked or on_gpu(spec.train) or cpu_has_bf16() is not False:
        return None
    return (
        f"note: {spec.source}: bf16 on this CPU, which has no bf16 arithmetic ({', '.join(sorted(CPU_BF16_FLAGS))} "
        "absent from /proc/cpuinfo): torch emulates it, measured 13.7x the step time of fp32; "
        "set train.bf16: false on this machine"
    )


def weights_dtype(lora_settings: dict[str, Any] | None, device: torch.device) -> torch.dtype | str:
    """The dtype the model's weights are loaded in. transformers loads a checkpoint in the dtype it was
    saved in (bf16 for most LLMs): trained in place, AdamW's small updates would round away, so the
    weights that train are fp32 and mixed precision is autocast over them. A LoRA adapter's frozen
    base keeps the checkpoint's dtype on a GPU (half the memory; peft keeps the adapter in fp32)."""
    if lora_settings is not None and device.type == "cuda":  # the trial's device (use_cpu on a GPU box: fp32)
        return "auto"
    return torch.float32


def make_trainer(
    task: Task,
    task_data: TaskData,
    tokenizer,
    model_path: str,
    args,
    callbacks=(),
    train_dataset=None,
    eval_dataset=None,
    lora_settings: dict[str, Any] | None = None,
    dropout: dict[str, float] | None = None,
    length_split: int = 1,
):
    """A Trainer on a fresh model (a new classification head is drawn from `args.seed`), wrapped in a
    LoRA adapter when `lora_settings` says so; `dropout` overrides the config's dropout probabilities;
    `length_split` > 1 trains each batch as that many micro-batches (training.length_split)."""
    from transformers import PrinterCallback, Trainer, set_seed

    set_seed(args.seed)
    dtype = weights_dtype(lora_settings, args.device)
    model = task.build_model(model_path, task_data.labels, dtype=dtype, **(dropout or {}))
    if lora_settings is not None:
        model = lora.wrap(model, lora_settings, task.PEFT_TASK_TYPE)
    if task.derived_metrics is not None:  # before the reporter reads the metrics
        callbacks = [DerivedMetrics(task.derived_metrics), *callbacks]
    if task_data.generation is not None:  # so are the scores of generated outputs
        callbacks = [GeneratedMetrics(task_data.generation, tokenizer), *callbacks]
    trainer = (trainer_class() if length_split > 1 else Trainer)(
        model=model,
        args=args,
        train_dataset=task_data.train if train_dataset is None else train_dataset,
        eval_dataset=task_data.evaluated if eval_dataset is None else eval_dataset,
        data_collator=task.collator(tokenizer, model),
        compute_metrics=task.compute_metrics,
        preprocess_logits_for_metrics=task.preprocess_logits_for_metrics,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # our progress lines replace its log dicts
    trainer.length_split = length_split
    # Evaluated however often, a trial trains the same weights: no evaluation moves its dropout masks.
    trainer.evaluate = evaluate_aside(trainer.evaluate, args.device)
    match_accumulation(trainer)  # accumulated micro-batches train as the effective batch would
    return trainer


def generated_examples(trainer) -> list[dict[str, str]]:
    """A few inputs, references and outputs of the last evaluation, when the trial generates."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, GeneratedMetrics):
            return callback.examples
    return []
