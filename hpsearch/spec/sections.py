"""The study file's sections as frozen pydantic models: each default is written here once, each
field's docstring is its description (in the JSON Schema and the generated key reference)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from hpsearch.spec.catalog import AUGMENT_OPS
from hpsearch.spec.fields import (
    AtLeastOne,
    ClosedProbability,
    Count,
    Length,
    NonNegative,
    Number,
    Positive,
    PositiveFloat,
    Seconds,
    Section,
    Seed,
    allowed,
    fail,
    rule,
)

# What a trial may be charged as its cost, the optional second objective (always minimized); each is a
# figure `trial.run_trial` records for every trial that trains: the device time it held (what
# budget.device_hours counts), the time in Trainer.train() alone, and the peak memory of the device.
COSTS = ("device_seconds", "train_seconds", "peak_memory_mb")
Cost = Literal[COSTS]  # Literal of a tuple: each of its names
AugmentOp = Literal[AUGMENT_OPS]


class ModelSection(Section):
    """The model every trial fine-tunes (or, with search.model, the settings shared by the choices)."""

    name_or_path: str | None = None
    """A local folder with config.json, or a hub id (a packaged local copy is used when installed);
    leave it out when search.model picks the model per trial."""
    save_best: bool = False
    """Keep the best trial's fine-tuned model and tokenizer in NAME.best/model/ beside the study."""
    dropout: Annotated[Number, allowed(lambda v: 0 <= v < 1, "a number in [0, 1)")] | None = None
    """Every dropout probability of the model's config; unset keeps the model's own values."""


class ModelSpec(ModelSection):
    choices: dict[str, str] = Field(default_factory=dict)
    """search.model: each choice as written (the trial's param) -> the folder or hub id it loads."""

    def dropout_for(self, params: dict[str, Any]) -> float | None:
        """The trial's dropout: searched, else fixed, else None (the model's own values)."""
        value = params.get("dropout", self.dropout)
        return None if value is None else float(value)


class DataSpec(Section):
    """The dataset: where it is, its splits and columns, and how much of it a trial reads."""

    path: str
    """A hub dataset id, a local file (csv, json or JSON Lines, jsonl, parquet), a folder with one file per split,
    or a folder datasets' save_to_disk wrote (a single Dataset is the train split)."""
    text_column: str = "text"
    """sequence-classification: the input text."""
    label_column: str = "label"
    """sequence-classification: the class label (one per row, in a column of its own; at least 2 in train)."""
    train_split: str = "train"
    """The train split's name."""
    eval_split: str | None = "validation"
    """The eval split's name; unset (null) when eval_fraction carves the eval split out of train."""
    eval_fraction: Annotated[float, rule(lambda v: 0 < v < 1, "must be in (0, 1), got {v}")] | None = None
    """Hold out this fraction of the train split (seeded) as the eval split."""
    max_length: Length = 128
    """Inputs are truncated to this many tokens."""
    max_train_samples: Positive | None = None
    """Seeded subsample of the train split."""
    max_eval_samples: Positive | None = None
    """Seeded subsample of the eval split."""
    seed: Seed = 0
    """Seed of the subsampling and of eval_fraction."""
    prompt_column: str = "prompt"
    """causal-lm: the prompt of a prompt/completion pair."""
    completion_column: str = "completion"
    """causal-lm: what the model learns to answer (the only tokens the loss counts)."""
    messages_column: str | None = None
    """causal-lm: chats instead of pairs: non-empty lists of {role, content} (null content is "") or their JSON text."""
    packing: bool = False
    """causal-lm: train examples concatenated into blocks of max_length (remainder dropped; train fills one)."""
    length_split: Positive = 1
    """Train each batch, its rows sorted by length, as this many micro-batches padded to their own
    longest row, in one backward pass: the same gradient, less padding (1: the batch whole)."""
    source_column: str = "source"
    """seq2seq: the encoder's input (the document to summarise); truncated to max_length tokens."""
    target_column: str = "target"
    """seq2seq: what the decoder learns to write (the summary)."""
    max_target_length: Length = 128
    """seq2seq: targets are truncated to this many tokens (summaries are much shorter than sources)."""


class ObjectiveSection(Section):
    """What the study optimizes."""

    metric: str | None = None
    """Measured on the eval split: accuracy, f1_macro or loss (classification); loss or perplexity
    (causal-lm); loss (seq2seq); or a metric the generation section names. An eval_ prefix is
    accepted (eval_accuracy, as transformers reports it). Default: the task's (accuracy, loss, rougeL)."""
    direction: Literal["maximize", "minimize"] | None = None
    """maximize or minimize; defaults to what the metric needs (required for a user metric)."""
    cost: Cost | None = None
    """A second objective, always minimized (device_seconds, train_seconds or peak_memory_mb): the
    study then searches the Pareto front of quality against cost instead of one best trial."""
    at: Literal["last", "best"] = "last"
    """Which evaluation is a trial's value: last (after its last step) or best (its best evaluation,
    whose step is recorded; export and hpsearch train stop there, model.save_best keeps its weights).
    best needs every evaluation on the whole eval split: not with evaluation.subsample."""


class ObjectiveSpec(ObjectiveSection):
    metric: str = "accuracy"
    direction: str = "maximize"

    @property
    def key(self) -> str:
        return f"eval_{self.metric}"

    @property
    def directions(self) -> list[str]:
        """The study's directions: the metric's, then the cost's (minimize) when there is one."""
        return [self.direction] if self.cost is None else [self.direction, "minimize"]


class GenerationSpec(Section):
    """causal-lm and seq2seq: at every evaluation, generate (greedily) for a fixed eval sample and score the outputs."""

    metrics: tuple[str, ...] = Field((), strict=False)
    """Scored on the outputs and recorded as eval_<name>: built-in (exact_match, rouge1, rouge2,
    rougeL) or installed metrics; empty: off. Default: the task's (seq2seq: rouge1, rouge2, rougeL)."""
    samples: Positive = 32
    """The first N rows of the eval split: the same rows for every trial."""
    max_new_tokens: Positive = 64
    """The longest output generated for a row."""

    @property
    def enabled(self) -> bool:
        return bool(self.metrics)


class EvaluationSpec(Section):
    """When a trial is evaluated, on the progress axis every trial shares: training samples seen (optimizer
    steps times the effective batch, epoch by epoch), so trials of any batch size are evaluated and compared at the
    same points."""

    every: Annotated[Number, allowed(lambda v: v > 0, "a number > 0")] = 0.0625
    """Up to 1: a fraction of the trial's training samples (0.0625, the default: sixteen evaluations;
    1: only the last step); above 1: a number of samples. Give samples when num_train_epochs or max_steps is searched,
    so that every trial is evaluated at the same points. The last step is always evaluated."""
    subsample: Positive | None = None
    """Intermediate evaluations on this many rows of the eval split (a fixed sample, stratified by label
    for classification); the final objective on the whole split. Unset: every evaluation on the whole
    split."""
    seed: Seed = 0
    """Seed of the subsample's rows."""


class ConfirmSpec(Section):
    """`hpsearch confirm`: the search's best configs trained again with new seeds (the head's initialisation,
    the data order), so that the winner is the best mean over seeds, not one lucky run."""

    top_k: Count = 3
    """How many of the search's best configs (distinct params) to confirm; with objective.cost, trials
    of the Pareto front."""
    seeds: Count = 3
    """New seeds per config (train.seed + 1, + 2, ...), each one trial; the search's own trial counts too."""


class BudgetSpec(Section):
    """When the study ends (any that is set; grid also ends when its grid is done)."""

    n_trials: Count | None = None
    """Total trials of the study, counted across resumes; grid defaults to the grid size."""
    timeout: PositiveFloat | None = None
    """Seconds for this invocation; no new trial starts after it."""
    device_hours: PositiveFloat | None = None
    """Compute for the whole study: the trials' device-seconds, summed over runs and workers."""


class HeartbeatSpec(Section):
    """How a trial whose worker died is found and re-run."""

    interval: Seconds = 30
    """Seconds between a running trial's heartbeats."""
    grace_period: Seconds = 120
    """Seconds without a heartbeat after which a trial counts as dead (its worker was killed)."""
    max_retries: NonNegative = 2
    """How many times a dead trial is re-run with the same params."""

    @model_validator(mode="after")
    def _grace_after_interval(self) -> HeartbeatSpec:
        if self.grace_period <= self.interval:
            raise fail("must be longer than heartbeat.interval", key="grace_period")
        return self


class ResourcesSpec(Section):
    """What one trial holds while it trains."""

    devices_per_trial: Count = 1
    """Processes (one per GPU, or per CPU slot with gloo) one trial trains on with DDP; 1 trains in the
    worker itself. Above 1 each rank trains on per_device_train_batch_size rows: the effective batch is
    that many times larger. Not with model.save_best or generation."""


class EarlyStoppingSpec(Section):
    """Stop a trial whose objective stopped improving; it completes with its last evaluation."""

    patience: AtLeastOne | None = None
    """Stop a trial after this many evaluations in a row without an improvement; unset: off."""
    threshold: Annotated[
        float, Field(allow_inf_nan=True), allowed(lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
    ] = 0.0
    """An evaluation improves when it beats the reference by more than this, in the metric's units."""

    @property
    def enabled(self) -> bool:
        return self.patience is not None


class LoraSection(Section):
    """The LoRA adapter's fixed settings (with finetune: lora, or when finetune is searched)."""

    r: AtLeastOne = 8
    """The adapter's rank."""
    alpha: Annotated[Number, allowed(lambda v: v > 0, "a number > 0")] = 16.0
    """The adapter's scaling (alpha / r multiplies its update)."""
    dropout: Annotated[Number, allowed(lambda v: 0 <= v < 1, "a number in [0, 1)")] = 0.05
    """Dropout on the adapter's input."""
    target_modules: Annotated[str, allowed(lambda v: bool(v.strip()), "module names, comma-separated")] | None = None
    """Comma-separated module names, all-linear, or unset: peft's default for the architecture."""


class FinetuneSpec(LoraSection):
    """How a trial trains the model: all its weights, or a LoRA adapter (peft)."""

    method: str = "full"

    def settings(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """A trial's LoRA settings (its searched values over these), or None for full fine-tuning."""
        if params.get("finetune", self.method) != "lora":
            return None
        return {
            "r": params.get("lora_r", self.r),
            "alpha": float(params.get("lora_alpha", self.alpha)),
            "dropout": float(params.get("lora_dropout", self.dropout)),
            "target_modules": params.get("lora_target_modules", self.target_modules),
        }


class AugmentSpec(Section):
    """Training-set augmentation (the data-mismatch knob): noise on the train split's input text."""

    ops: tuple[AugmentOp, ...] = Field((), strict=False)
    """Operations applied in this order (word_deletion, word_swap, char_noise, truncation); none: off."""
    probability: ClosedProbability | None = 0.0
    """Per word (per text for truncation), in [0, 1]; required with ops unless searched as
    augmentation_probability."""

    def probability_for(self, params: dict[str, Any]) -> float:
        """A trial's probability: its searched value, else the fixed one."""
        return float(params.get("augmentation_probability", self.probability or 0.0))


class DivergenceSection(Section):
    """Prune a trial whose logged train loss is NaN, infinite, or far above its first."""

    enabled: bool = True
    """Off: a diverging trial trains on to its end."""
    loss_factor: Annotated[float, rule(lambda v: v > 1, "must be > 1, got {v}")] = 10.0
    """Prune when the train loss exceeds this multiple of the trial's first logged loss."""


__all__ = [
    "COSTS",
    "AugmentSpec",
    "BudgetSpec",
    "DataSpec",
    "DivergenceSection",
    "EarlyStoppingSpec",
    "EvaluationSpec",
    "FinetuneSpec",
    "GenerationSpec",
    "HeartbeatSpec",
    "LoraSection",
    "ModelSection",
    "ModelSpec",
    "ObjectiveSection",
    "ObjectiveSpec",
    "ResourcesSpec",
]
