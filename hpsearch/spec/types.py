"""The study's parts as frozen dataclasses, the tables of what each part allows, and `SpecError`.

`hpsearch.spec` reads a study file into these; the rest of hpsearch reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hpsearch.errors import SpecError
from hpsearch.spec.catalog import GENERATED_METRICS

__all__ = ["SpecError"]  # re-exported: every spec error is a SpecError

TASKS = ("sequence-classification", "causal-lm", "seq2seq")
# Each sampler and pruner with the options a study file may give it, and their types.
SAMPLERS: dict[str, dict[str, type | tuple]] = {
    "grid": {"seed": int},
    "random": {"seed": int},
    "tpe": {"seed": int, "n_startup_trials": int, "multivariate": bool},
    "nsga2": {"seed": int, "population_size": int},
}
_WARMUP = {"n_startup_trials": int, "n_warmup_steps": int, "interval_steps": int, "n_min_trials": int}
PRUNERS: dict[str, dict[str, type | tuple]] = {
    "none": {},
    "median": dict(_WARMUP),
    "percentile": {"percentile": float, **_WARMUP},
    "successive-halving": {
        "min_resource": (int, str),
        "reduction_factor": int,
        "min_early_stopping_rate": int,
        "bootstrap_count": int,
    },
    "hyperband": {"min_resource": int, "max_resource": (int, str), "reduction_factor": int, "bootstrap_count": int},
}
METRICS = {"accuracy": "maximize", "f1_macro": "maximize", "loss": "minimize", "perplexity": "minimize"}
METRICS.update(dict.fromkeys(GENERATED_METRICS, "maximize"))  # text metrics of generated outputs: scores
# What a trial may be charged as its cost, the optional second objective (always minimized); each is a
# figure `trial.run_trial` records for every trial that trains: the device time it held (what
# budget.device_hours counts), the time in Trainer.train() alone, and the peak memory of the device.
COSTS = ("device_seconds", "train_seconds", "peak_memory_mb")
# The metrics each task measures on the eval split; the first is the default objective.
TASK_METRICS = {
    "sequence-classification": ("accuracy", "f1_macro", "loss"),
    "causal-lm": ("loss", "perplexity"),
    "seq2seq": ("loss",),
}
# The tasks that can generate, with the metrics their `generation` section scores by default (none: off).
TASK_GENERATION = {"causal-lm": (), "seq2seq": ("rouge1", "rouge2", "rougeL")}
# A task's default objective where it is not TASK_METRICS' first (it must then be measured).
DEFAULT_OBJECTIVE = {"seq2seq": "rougeL"}
# The data keys each task reads, besides those every task has.
TASK_DATA_KEYS = {
    "sequence-classification": ("text_column", "label_column"),
    "causal-lm": ("prompt_column", "completion_column", "messages_column", "packing"),
    "seq2seq": ("source_column", "target_column", "max_target_length"),
}


# hpsearch's own settings (the fine-tuning method, dropout, the model, augmentation), searched or fixed
# like TrainingArguments fields but not passed to them: name -> (accepted types, a check of one
# value, what is allowed).
SETTING_PARAMS: dict[str, tuple[tuple[type, ...], Any, str]] = {
    "finetune": ((str,), lambda v: v in ("full", "lora"), "full or lora"),
    "lora_r": ((int,), lambda v: v >= 1, "a whole number >= 1"),
    "lora_alpha": ((int, float), lambda v: v > 0, "a number > 0"),
    "lora_dropout": ((int, float), lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "lora_target_modules": ((str,), lambda v: bool(v.strip()), "module names, comma-separated, or all-linear"),
    "augmentation_probability": ((int, float), lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    # Every dropout probability of the model's config (model.dropout when fixed).
    "dropout": ((int, float), lambda v: 0 <= v < 1, "a number in [0, 1)"),
    # The model itself, one of a list (search.model): a local folder or a hub id, as written.
    "model": ((str,), lambda v: bool(v.strip()), "a model folder or hub id"),
}


# Extensions that make a value a local file rather than a hub id (the data readers' and friends').
FILE_SUFFIXES = {".csv", ".json", ".jsonl", ".parquet", ".tsv", ".txt", ".yaml", ".yml", ".arrow"}


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: a float or int range, or a list of categorical choices."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def values(self) -> list[Any]:
        """Every value the parameter can take; only for discrete parameters (used by grid)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None:
            raise ValueError(f"{self.name} is continuous")
        count = round((self.high - self.low) / self.step) + 1  # spec checked that step divides the range
        values = [self.low + i * self.step for i in range(count)]
        if self.kind == "float":
            values = [round(v, 12) for v in values]
        return values

    @property
    def is_discrete(self) -> bool:
        return self.kind == "categorical" or self.step is not None


@dataclass(frozen=True)
class ModelSpec:
    name_or_path: str | None
    """A local folder with config.json, or a hub id (a packaged local copy is used when installed);
    None when search.model picks the model per trial."""
    save_best: bool = False
    """Keep the best trial's fine-tuned model and tokenizer in NAME.best/model/ beside the study."""
    dropout: float | None = None
    """Every dropout probability of the model's config; None keeps the model's own values."""
    choices: dict[str, str] = field(default_factory=dict)
    """search.model: each choice as written (the trial's param) -> the folder or hub id it loads."""

    def dropout_for(self, params: dict[str, Any]) -> float | None:
        """The trial's dropout: searched, else fixed, else None (the model's own values)."""
        value = params.get("dropout", self.dropout)
        return None if value is None else float(value)


@dataclass(frozen=True)
class FinetuneSpec:
    """How a trial trains the model: all its weights, or a LoRA adapter (peft)."""

    method: str = "full"
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: str | None = None
    """Comma-separated module names, all-linear, or None: peft's default for the architecture."""

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


@dataclass(frozen=True)
class AugmentSpec:
    """Training-set augmentation (the data-mismatch knob): noise on the train split's input text."""

    ops: tuple[str, ...] = ()
    """Operations of catalog.AUGMENT_OPS, applied in this order; none: augmentation is off."""
    probability: float | None = 0.0
    """Per word (per text for truncation); None when searched as augmentation_probability."""

    def probability_for(self, params: dict[str, Any]) -> float:
        """A trial's probability: its searched value, else the fixed one."""
        return float(params.get("augmentation_probability", self.probability or 0.0))


@dataclass(frozen=True)
class DataSpec:
    path: str
    """A hub dataset id, a local file (csv, json, jsonl, parquet) or a folder with one file per split."""
    text_column: str = "text"
    label_column: str = "label"
    train_split: str = "train"
    eval_split: str | None = "validation"
    """The eval split's name; None when eval_fraction carves the eval split out of train."""
    eval_fraction: float | None = None
    """Hold out this fraction of the train split (seeded) as the eval split."""
    max_length: int = 128
    max_train_samples: int | None = None
    """Seeded subsample of the train split."""
    max_eval_samples: int | None = None
    seed: int = 0
    """Seed of the subsampling and of eval_fraction."""
    prompt_column: str = "prompt"
    """causal-lm: the prompt of a prompt/completion pair."""
    completion_column: str = "completion"
    """causal-lm: what the model learns to answer (the only tokens the loss counts)."""
    messages_column: str | None = None
    """causal-lm: a column of chat conversations (lists of {role, content}) instead of pairs."""
    packing: bool = False
    """causal-lm: concatenate the train examples into full blocks of max_length."""
    source_column: str = "source"
    """seq2seq: the encoder's input (the document to summarise); truncated to max_length tokens."""
    target_column: str = "target"
    """seq2seq: what the decoder learns to write (the summary)."""
    max_target_length: int = 128
    """seq2seq: targets are truncated to this many tokens (summaries are much shorter than sources)."""


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: str = "accuracy"
    """Measured on the eval split: accuracy, f1_macro or loss (classification); loss or perplexity (causal-lm);
    loss (seq2seq); or a metric of generated outputs that the generation section names."""
    direction: str = ""
    """maximize or minimize; defaults to what the metric needs (required for a user metric)."""
    cost: str | None = None
    """A second objective, always minimized (device_seconds, train_seconds or peak_memory_mb): the
    study then searches the Pareto front of quality against cost instead of one best trial."""

    @property
    def key(self) -> str:
        return f"eval_{self.metric}"

    @property
    def directions(self) -> list[str]:
        """The study's directions: the metric's, then the cost's (minimize) when there is one."""
        return [self.direction] if self.cost is None else [self.direction, "minimize"]


@dataclass(frozen=True)
class GenerationSpec:
    """At every evaluation, generate (greedily) for a fixed eval sample and score the outputs."""

    metrics: tuple[str, ...] = ()
    """Scored on the outputs and recorded as eval_<name>: built-in or installed metrics; empty: off."""
    samples: int = 32
    """The first N rows of the eval split: the same rows for every trial."""
    max_new_tokens: int = 64
    """The longest output generated for a row."""

    @property
    def enabled(self) -> bool:
        return bool(self.metrics)


@dataclass(frozen=True)
class SamplerSpec:
    type: str = "tpe"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerSpec:
    type: str = "median"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetSpec:
    n_trials: int | None = None
    """Total trials of the study, counted across resumes; grid defaults to the grid size."""
    timeout: float | None = None
    """Seconds for this invocation; no new trial starts after it."""
    device_hours: float | None = None
    """Compute for the whole study: the trials' device-seconds, summed over runs and workers."""


@dataclass(frozen=True)
class HeartbeatSpec:
    interval: int = 30
    """Seconds between a running trial's heartbeats."""
    grace_period: int = 120
    """Seconds without a heartbeat after which a trial counts as dead (its worker was killed)."""
    max_retries: int = 2
    """How many times a dead trial is re-run with the same params."""


@dataclass(frozen=True)
class EarlyStoppingSpec:
    patience: int | None = None
    """Stop a trial after this many evaluations in a row without an improvement; None: off."""
    threshold: float = 0.0
    """An evaluation improves when it beats the reference by more than this, in the metric's units."""

    @property
    def enabled(self) -> bool:
        return self.patience is not None


@dataclass(frozen=True)
class Spec:
    name: str
    task: str
    model: ModelSpec
    data: DataSpec
    objective: ObjectiveSpec
    search: dict[str, ParamSpec]
    train: dict[str, Any]
    sampler: SamplerSpec
    pruner: PrunerSpec
    budget: BudgetSpec
    storage: str | None
    divergence_factor: float | None
    """Prune a trial whose logged train loss is NaN, infinite, or above this multiple of its first."""
    heartbeat: HeartbeatSpec
    early_stopping: EarlyStoppingSpec
    """Stop a trial whose objective stopped improving; it completes with its last evaluation."""
    finetune: FinetuneSpec
    """Full fine-tuning or a LoRA adapter, with the adapter's fixed settings."""
    source: str
    """The study file this spec was read from."""
    augmentation: AugmentSpec = AugmentSpec()
    """Augmentation of the train split, applied per trial (off by default)."""
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    """causal-lm and seq2seq: metrics of outputs generated for a fixed eval sample."""

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (saved with the study)."""
        out = dataclasses.asdict(self)
        if self.task in TASK_GENERATION:
            out["generation"]["metrics"] = list(self.generation.metrics)
        else:
            del out["generation"]
        for key in {k for keys in TASK_DATA_KEYS.values() for k in keys} - set(TASK_DATA_KEYS[self.task]):
            del out["data"][key]  # only the keys of this study's task
        out["search"] = {name: _param_to_raw(p) for name, p in self.search.items()}
        if not self.model.choices:  # only a searched model has choices to record
            del out["model"]["choices"]
        out["sampler"] = {"type": self.sampler.type, **self.sampler.options}
        out["pruner"] = {"type": self.pruner.type, **self.pruner.options}
        tuning = out.pop("finetune")
        out["finetune"] = tuning.pop("method")
        if out["finetune"] == "lora" or "finetune" in self.search:  # LoRA settings only where they apply
            out["lora"] = tuning
        factor = out.pop("divergence_factor")
        out["divergence"] = {"enabled": False} if factor is None else {"loss_factor": factor}
        out["augmentation"] = {"ops": list(self.augmentation.ops), "probability": self.augmentation.probability}
        return out


def _param_to_raw(p: ParamSpec) -> Any:
    if p.kind == "categorical":
        return list(p.choices)
    out = {"type": p.kind, "low": p.low, "high": p.high}
    if p.log:
        out["log"] = True
    if p.step is not None:
        out["step"] = p.step
    return out
