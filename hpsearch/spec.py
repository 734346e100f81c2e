"""Study file (YAML) plus `--set` overrides -> a validated, frozen `Spec`.

Every error names the file, the field, what was given and what is allowed, and is raised as
`SpecError` before anything is written.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpsearch import scoring
from hpsearch.augment import OPS as AUGMENT_OPS

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
METRICS.update(dict.fromkeys(scoring.BUILT_IN, "maximize"))  # text metrics of generated outputs: scores
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

# Keys hpsearch sets itself for every trial; a study file may not set them.
RESERVED_TRAINING_ARGUMENTS = {"output_dir": "hpsearch gives every trial its own output folder"}
# Names users reach for that transformers 5 no longer has.
RENAMED_TRAINING_ARGUMENTS = {
    "warmup_ratio": "use warmup_steps with a float in [0, 1) (a fraction of the training steps)",
    "evaluation_strategy": "use eval_strategy",
    "lr": "use learning_rate",
    "batch_size": "use per_device_train_batch_size",
}


# Settings of the fine-tuning method, searched or fixed like TrainingArguments fields (but not passed
# to them): name -> (accepted types, a check of one value, what is allowed).
FINETUNE_PARAMS: dict[str, tuple[tuple[type, ...], Any, str]] = {
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


class SpecError(Exception):
    """Invalid study input: the CLI prints it in one or two lines and exits with status 2."""

    def __init__(self, source: str | Path, field_path: str, message: str) -> None:
        self.source = str(source)
        self.field = field_path
        self.message = message
        where = f"{self.source}: {field_path}" if field_path else self.source
        super().__init__(f"{where}: {message}")


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
    """Operations of hpsearch.augment.OPS, applied in this order; none: augmentation is off."""
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
    finetune: FinetuneSpec
    """Full fine-tuning or a LoRA adapter, with the adapter's fixed settings."""
    """Stop a trial whose objective stopped improving; it completes with its last evaluation."""
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


# --------------------------------------------------------------------------------------------
# Reading


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e-5 as a float (YAML 1.1 wants 1.0e-5) and dates as plain strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A `--set` value: YAML scalar or flow list, so `3`, `1e-4`, `true`, `[8, 16]` all work."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read a study file, apply `KEY=VALUE` overrides and validate everything."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "", "no such study file")
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(path, "", f"malformed YAML: {where}{problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(path, "", "a study file is a mapping of keys (name, task, model, ...)")
    from_cli = apply_overrides(raw, overrides, path)
    return parse_spec(raw, path, from_cli)


def apply_overrides(raw: dict, overrides, source) -> set[str]:
    """Apply `a.b.c=value` overrides in place; returns the dotted keys that were set."""
    keys = set()
    for item in overrides:
        if "=" not in item:
            raise SpecError(source, "--set", f"{item!r} is not KEY=VALUE (e.g. sampler.type=random)")
        dotted, _, text = item.partition("=")
        parts = dotted.strip().split(".")
        if not all(parts):
            raise SpecError(source, "--set", f"{dotted!r} is not a dotted key")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(source, ".".join(parts[: i + 1]), "is not a mapping; cannot set a key in it")
            node = child
        node[parts[-1]] = parse_value(text)
        keys.add(dotted.strip())
    return keys


# --------------------------------------------------------------------------------------------
# Validation helpers


class _Fields:
    """Reads one mapping section, type-checking each field and rejecting unknown keys."""

    def __init__(self, raw: Any, section: str, source: Path) -> None:
        self.source = source
        self.section = section
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SpecError(source, section, f"must be a mapping, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.used: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.section}.{key}" if self.section else key

    def get(self, key: str, kind, default: Any = ..., allowed=None) -> Any:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            if default is ...:
                raise SpecError(self.source, self.name(key), "is required")
            return default
        return check_type(self.raw[key], kind, self.source, self.name(key), allowed)

    def finish(self, extra_allowed=()) -> None:
        unknown = sorted(set(self.raw) - self.used - set(extra_allowed))
        if unknown:
            allowed = ", ".join(sorted(self.used | set(extra_allowed)))
            raise SpecError(self.source, self.name(unknown[0]), f"unknown key; allowed: {allowed}")


def check_type(value: Any, kind, source, name: str, allowed=None) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if not ok:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise SpecError(source, name, f"must be {expected}, got {value!r}")
    if allowed is not None and value not in allowed:
        raise SpecError(source, name, f"{value!r} is not allowed; allowed: {', '.join(map(str, allowed))}")
    return value


def _positive(value, source, name):
    if value is not None and value <= 0:
        raise SpecError(source, name, f"must be > 0, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Sections


def parse_spec(raw: dict, source: Path, from_cli: set[str] = frozenset()) -> Spec:
    top = _Fields(raw, "", source)
    name = top.get("name", str)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise SpecError(source, "name", f"{name!r}: use letters, digits, '-', '_' and '.'")
    task = top.get("task", str, allowed=TASKS)
    raw_search = raw.get("search")
    searched_model = isinstance(raw_search, dict) and "model" in raw_search
    model = _parse_model(top.get("model", (dict, str), None), source, from_cli, searched_model)
    data = _parse_data(top.get("data", dict), source, from_cli, task)
    generation = _parse_generation(top.get("generation", dict, None), source, task)
    if task == "causal-lm" and generation.enabled and generation.max_new_tokens >= data.max_length:
        raise SpecError(
            source,
            "generation.max_new_tokens",
            f"{generation.max_new_tokens} leaves no room for the prompt: prompt and output share "
            f"data.max_length ({data.max_length}); give fewer tokens",
        )
    objective = _parse_objective(top.get("objective", dict, {}), source, task, generation)
    search = _parse_search(top.get("search", dict), source)
    if "model" in search:
        model = dataclasses.replace(model, choices=_model_choices(search["model"], source, from_cli))
    if model.dropout is not None and "dropout" in search:
        raise SpecError(source, "model.dropout", "is also in search (search.dropout); searched or fixed, not both")
    train = _parse_train(top.get("train", dict, {}), source, search)
    sampler = _parse_typed(top.get("sampler", dict, {}), "sampler", SAMPLERS, "tpe", source, from_cli)
    pruner = _parse_pruner(top.get("pruner", dict, {}), objective, source, from_cli)
    budget = _parse_budget(top.get("budget", dict, {}), source, sampler)
    storage = top.get("storage", str, None)
    divergence = _Fields(top.get("divergence", dict, {}), "divergence", source)
    divergence_factor = divergence.get("loss_factor", float, 10.0)
    if not divergence.get("enabled", bool, True):
        divergence_factor = None
    elif divergence_factor <= 1:
        raise SpecError(source, "divergence.loss_factor", f"must be > 1, got {divergence_factor}")
    divergence.finish()
    beat = _Fields(top.get("heartbeat", dict, {}), "heartbeat", source)
    heartbeat = HeartbeatSpec(
        interval=_positive(beat.get("interval", int, 30), source, "heartbeat.interval"),
        grace_period=_positive(beat.get("grace_period", int, 120), source, "heartbeat.grace_period"),
        max_retries=beat.get("max_retries", int, 2),
    )
    beat.finish()
    if heartbeat.grace_period <= heartbeat.interval:
        raise SpecError(source, "heartbeat.grace_period", "must be longer than heartbeat.interval")
    if heartbeat.max_retries < 0:
        raise SpecError(source, "heartbeat.max_retries", f"must be >= 0, got {heartbeat.max_retries}")
    early_stopping = _parse_early_stopping(top.get("early_stopping", dict, {}), source, pruner)
    finetune = _parse_finetune(top.get("finetune", str, "full"), top.get("lora", dict, {}), raw, search, source)
    augmentation = _parse_augmentation(top.get("augmentation", dict, {}), search, source)
    top.finish()
    if model.save_best and objective.cost is not None:
        raise SpecError(
            source,
            "model.save_best",
            "with objective.cost there is no one best trial but a Pareto front; drop save_best, then "
            "export the trial you pick (hpsearch export --trial N) and retrain it with hpsearch train",
        )
    if sampler.type == "grid":
        for param in search.values():
            if not param.is_discrete:
                raise SpecError(
                    source,
                    f"search.{param.name}",
                    "the grid sampler needs a discrete space: give a list of choices or a step",
                )
    spec = Spec(
        name=name,
        task=task,
        model=model,
        data=data,
        objective=objective,
        search=search,
        train=train,
        sampler=sampler,
        pruner=pruner,
        budget=budget,
        storage=storage,
        divergence_factor=divergence_factor,
        heartbeat=heartbeat,
        early_stopping=early_stopping,
        finetune=finetune,
        source=str(source),
        augmentation=augmentation,
        generation=generation,
    )
    try:
        json.dumps(spec.to_dict())
    except TypeError as exc:  # e.g. a YAML value with no JSON form; the spec is stored as JSON
        raise SpecError(source, "", f"a value cannot be stored: {exc}") from None
    return spec


def resolve_path(value: str, dotted: str, source: Path, from_cli: set[str]) -> str:
    """A local path made absolute, or a hub id (`org/name`) left as it is.

    Paths in a study file are relative to its folder; paths given with --set, to the cwd. A value
    is a hub id only if nothing of it exists locally and it has the hub's `org/name` shape. Hub
    names carry dots (Qwen/Qwen2.5-0.5B, meta-llama/Llama-3.1-8B): only a data file's extension
    makes a name a file.
    """
    given_on_cli = any(dotted == key or dotted.startswith(f"{key}.") for key in from_cli)
    base = Path.cwd() if given_on_cli else source.parent
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    parts = Path(value).parts
    looks_local = (
        candidate.exists()
        or value.startswith((".", "/", "~"))
        or len(parts) > 2
        or Path(value).suffix.lower() in FILE_SUFFIXES
        or (base / parts[0]).is_dir()
    )
    return str(candidate.resolve()) if looks_local else value


def _parse_model(raw, source, from_cli, searched: bool) -> ModelSpec:
    """The model section; without name_or_path when `searched` (search.model names the models)."""
    if isinstance(raw, str):
        raw = {"name_or_path": raw}
    f = _Fields(raw, "model", source)
    path = f.get("name_or_path", str, None if searched else ...)
    if searched and path is not None:
        raise SpecError(
            source, "model.name_or_path", "is also in search (search.model); the model is searched or fixed, not both"
        )
    dropout = f.get("dropout", (int, float), None)
    if dropout is not None:
        check_finetune_param("dropout", dropout, source, "model.dropout")
    spec = ModelSpec(
        name_or_path=None if path is None else resolve_path(path, "model.name_or_path", source, from_cli),
        save_best=f.get("save_best", bool, False),
        dropout=None if dropout is None else float(dropout),
    )
    f.finish()
    return spec


def _model_choices(param: ParamSpec, source, from_cli) -> dict[str, str]:
    """search.model: each choice as written -> a local path (relative to the study file, or to the cwd
    for --set) or a hub id, like model.name_or_path. The param keeps the name the user wrote."""
    resolved = {choice: resolve_path(choice, "search.model", source, from_cli) for choice in param.choices}
    if len(set(resolved.values())) != len(resolved):
        raise SpecError(source, "search.model", f"two choices name the same model: {', '.join(param.choices)}")
    return resolved


def _parse_data(raw, source, from_cli, task: str) -> DataSpec:
    f = _Fields(raw, "data", source)
    for other, keys in TASK_DATA_KEYS.items():
        for key in keys:
            if other != task and key not in TASK_DATA_KEYS[task] and key in raw:
                raise SpecError(source, f"data.{key}", f"is for task {other}, not {task}")
    path = resolve_path(f.get("path", str), "data.path", source, from_cli)
    eval_split = f.get("eval_split", str, None)
    eval_fraction = f.get("eval_fraction", float, None)
    if eval_fraction is not None:
        if eval_split is not None:
            raise SpecError(source, "data.eval_fraction", "set eval_split or eval_fraction, not both")
        if not 0 < eval_fraction < 1:
            raise SpecError(source, "data.eval_fraction", f"must be in (0, 1), got {eval_fraction}")
    elif eval_split is None:
        eval_split = "validation"
    spec = DataSpec(
        path=path,
        text_column=f.get("text_column", str, "text"),
        label_column=f.get("label_column", str, "label"),
        train_split=f.get("train_split", str, "train"),
        eval_split=eval_split,
        eval_fraction=eval_fraction,
        max_length=_positive(f.get("max_length", int, 128), source, "data.max_length"),
        max_train_samples=_positive(f.get("max_train_samples", int, None), source, "data.max_train_samples"),
        max_eval_samples=_positive(f.get("max_eval_samples", int, None), source, "data.max_eval_samples"),
        seed=f.get("seed", int, 0),
        prompt_column=f.get("prompt_column", str, "prompt"),
        completion_column=f.get("completion_column", str, "completion"),
        messages_column=f.get("messages_column", str, None),
        packing=f.get("packing", bool, False),
        source_column=f.get("source_column", str, "source"),
        target_column=f.get("target_column", str, "target"),
        max_target_length=_positive(f.get("max_target_length", int, 128), source, "data.max_target_length"),
    )
    if spec.messages_column is not None:
        for key in ("prompt_column", "completion_column"):
            if key in raw:
                raise SpecError(source, f"data.{key}", "set messages_column or prompt/completion columns, not both")
    f.finish()
    return spec


def _parse_objective(raw, source, task: str, generation: GenerationSpec) -> ObjectiveSpec:
    """Any metric the task measures: its own, or one the generation section scores."""
    f = _Fields(raw, "objective", source)
    measured = (*TASK_METRICS[task], *generation.metrics)
    default = DEFAULT_OBJECTIVE.get(task, TASK_METRICS[task][0])
    if "metric" not in f.raw and default not in measured:
        raise SpecError(
            source,
            "objective.metric",
            f"is required: the {task} default, {default}, is not among generation.metrics; "
            f"allowed: {', '.join(measured)}",
        )
    metric = f.get("metric", str, default, allowed=measured)
    if metric in METRICS:
        direction = f.get("direction", str, METRICS[metric], allowed=("maximize", "minimize"))
    elif f.raw.get("direction") is None:
        raise SpecError(
            source, "objective.direction", f"is required for {metric!r}, a user metric: maximize or minimize"
        )
    else:
        direction = f.get("direction", str, allowed=("maximize", "minimize"))
    cost = f.get("cost", str, None, allowed=COSTS)
    f.finish()
    return ObjectiveSpec(metric=metric, direction=direction, cost=cost)


def _parse_pruner(raw, objective: ObjectiveSpec, source, from_cli) -> PrunerSpec:
    """The pruner; with a cost objective only `none` (the default then): Optuna's pruners compare
    one reported value per step, and `Trial.report` does not exist for a multi-objective study."""
    pruner = _parse_typed(raw, "pruner", PRUNERS, "median" if objective.cost is None else "none", source, from_cli)
    if objective.cost is not None and pruner.type != "none":
        raise SpecError(
            source,
            "pruner.type",
            f"{pruner.type!r} cannot run with objective.cost: Optuna prunes single-objective studies only; "
            "use none (the default with a cost) or drop objective.cost",
        )
    return pruner


def _parse_generation(raw, source, task: str) -> GenerationSpec:
    """Off unless the task generates by default (seq2seq) or the study names metrics (causal-lm)."""
    if task not in TASK_GENERATION:
        if raw is not None:
            raise SpecError(source, "generation", f"is for tasks {', '.join(TASK_GENERATION)}, not {task}")
        return GenerationSpec()
    if raw is None:
        return GenerationSpec(metrics=TASK_GENERATION[task])
    f = _Fields(raw, "generation", source)
    default = list(TASK_GENERATION[task]) if TASK_GENERATION[task] else ...
    metrics = f.get("metrics", list, default)
    spec = GenerationSpec(
        metrics=tuple(metrics),
        samples=_positive(f.get("samples", int, 32), source, "generation.samples"),
        max_new_tokens=_positive(f.get("max_new_tokens", int, 64), source, "generation.max_new_tokens"),
    )
    f.finish()
    known = scoring.known()
    for name in metrics:
        if not isinstance(name, str):
            raise SpecError(source, "generation.metrics", f"{name!r}: give metric names, e.g. [rougeL]")
        if name in TASK_METRICS[task]:
            raise SpecError(source, "generation.metrics", f"{name!r} is measured by {task} already, not generated")
        if name not in known:
            raise SpecError(
                source,
                "generation.metrics",
                f"{name!r} is not a metric; built in: {', '.join(scoring.BUILT_IN)}; "
                f"installed: {scoring.describe_installed()}",
            )
    if len(set(metrics)) != len(metrics):
        raise SpecError(source, "generation.metrics", "names a metric twice")
    return spec


def _parse_typed(raw, section, table, default, source, from_cli):
    """sampler / pruner: `type` plus the options that type accepts.

    `--set sampler.type=random` on a study file whose TPE sampler has TPE-only options drops those
    options rather than failing: the file's options belonged to the type the command line replaced.
    """
    f = _Fields(raw, section, source)
    kind = f.get("type", str, default, allowed=tuple(table))
    options = {k: v for k, v in f.raw.items() if k != "type"}
    if f"{section}.type" in from_cli:
        options = {k: v for k, v in options.items() if k in table[kind] or f"{section}.{k}" in from_cli}
    for key, value in options.items():
        if key not in table[kind]:
            allowed = ", ".join(["type", *table[kind]])
            raise SpecError(source, f"{section}.{key}", f"unknown key for {section} {kind}; allowed: {allowed}")
        check_type(value, table[kind][key], source, f"{section}.{key}")
    for key in ("n_startup_trials", "n_warmup_steps", "reduction_factor", "min_resource"):
        if isinstance(options.get(key), int) and options[key] < 0:
            raise SpecError(source, f"{section}.{key}", f"must be >= 0, got {options[key]}")
    for key in ("min_resource", "max_resource"):
        if isinstance(options.get(key), str) and options[key] != "auto":
            raise SpecError(source, f"{section}.{key}", f"must be an integer or 'auto', got {options[key]!r}")
    if kind == "nsga2" and options.get("population_size", 2) < 2:
        raise SpecError(source, f"{section}.population_size", f"must be >= 2, got {options['population_size']}")
    if kind == "percentile" and "percentile" not in options:
        raise SpecError(source, f"{section}.percentile", "is required for the percentile pruner (0-100)")
    cls = SamplerSpec if section == "sampler" else PrunerSpec
    return cls(type=kind, options=options)


def _parse_early_stopping(raw, source, pruner: PrunerSpec) -> EarlyStoppingSpec:
    f = _Fields(raw, "early_stopping", source)
    patience = f.get("patience", int, None)
    threshold = f.get("threshold", float, 0.0)
    f.finish()
    if patience is not None and patience < 1:
        raise SpecError(source, "early_stopping.patience", f"{patience} is not allowed; a whole number >= 1")
    if not math.isfinite(threshold) or threshold < 0:
        raise SpecError(source, "early_stopping.threshold", f"{threshold} is not allowed; a finite number >= 0")
    if patience is not None and pruner.type == "hyperband" and not isinstance(pruner.options.get("max_resource"), int):
        # Hyperband's "auto" takes its budget from the first completed trial's last step, once and
        # for all; a trial stopped early would size every bracket for its shorter run.
        raise SpecError(
            source,
            "pruner.max_resource",
            "with early_stopping, give hyperband the trials' step count as an integer: 'auto' reads it "
            "from the first completed trial, which early stopping can cut short",
        )
    return EarlyStoppingSpec(patience=patience, threshold=threshold)


def check_finetune_param(name: str, value: Any, source, where: str) -> None:
    kinds, ok, allowed = FINETUNE_PARAMS[name]
    if isinstance(value, bool) or not isinstance(value, kinds) or not ok(value):
        raise SpecError(source, where, f"{value!r} is not allowed; {allowed}")


def _parse_finetune(method: str, lora: dict, raw: dict, search: dict, source) -> FinetuneSpec:
    check_finetune_param("finetune", method, source, "finetune")
    f = _Fields(lora, "lora", source)
    spec = FinetuneSpec(
        method=method,
        r=f.get("r", int, 8),
        alpha=float(f.get("alpha", (int, float), 16.0)),
        dropout=float(f.get("dropout", (int, float), 0.05)),
        target_modules=f.get("target_modules", str, None),
    )
    f.finish()
    for key in ("r", "alpha", "dropout", "target_modules"):
        value = getattr(spec, key)
        if value is not None:
            check_finetune_param(f"lora_{key}", value, source, f"lora.{key}")
    if "finetune" in search:
        if "finetune" in raw:
            raise SpecError(source, "finetune", "is also in search; a parameter is either searched or fixed")
        return spec
    if method == "full":  # LoRA settings would change nothing: say so rather than ignore them
        used = [f"search.{n}" for n in search if n.startswith("lora_")] + (["lora"] if raw.get("lora") else [])
        if used:
            raise SpecError(source, used[0], "is used only with finetune: lora (set it, or search finetune)")
    return spec


def _parse_augmentation(raw, search: dict, source) -> AugmentSpec:
    """`augmentation: {ops, probability}`; the probability is fixed here or searched, not both."""
    f = _Fields(raw, "augmentation", source)
    ops = f.get("ops", list, [])
    probability = f.get("probability", float, None)
    f.finish()
    for op in ops:
        if not isinstance(op, str) or op not in AUGMENT_OPS:
            allowed = ", ".join(AUGMENT_OPS)
            raise SpecError(source, "augmentation.ops", f"{op!r} is not an operation; allowed: {allowed}")
    if len(set(ops)) != len(ops):
        raise SpecError(source, "augmentation.ops", "lists an operation twice")
    if probability is not None:
        check_finetune_param("augmentation_probability", probability, source, "augmentation.probability")
    if "augmentation_probability" in search:
        if not ops:
            raise SpecError(
                source, "search.augmentation_probability", f"needs augmentation.ops, some of: {', '.join(AUGMENT_OPS)}"
            )
        if probability is not None:
            raise SpecError(
                source,
                "augmentation.probability",
                "is also in search (augmentation_probability); a parameter is either searched or fixed",
            )
        return AugmentSpec(ops=tuple(ops), probability=None)
    if ops and probability is None:
        raise SpecError(
            source,
            "augmentation.probability",
            "is required with ops: a number in [0, 1], or search it as augmentation_probability",
        )
    if probability and not ops:
        raise SpecError(source, "augmentation.ops", f"is empty; name some of: {', '.join(AUGMENT_OPS)}")
    return AugmentSpec(ops=tuple(ops), probability=probability or 0.0)


def _parse_budget(raw, source, sampler: SamplerSpec) -> BudgetSpec:
    f = _Fields(raw, "budget", source)
    budget = BudgetSpec(
        n_trials=_positive(f.get("n_trials", int, None), source, "budget.n_trials"),
        timeout=_positive(f.get("timeout", float, None), source, "budget.timeout"),
        device_hours=_positive(f.get("device_hours", float, None), source, "budget.device_hours"),
    )
    f.finish()
    if sampler.type != "grid" and (budget.n_trials, budget.timeout, budget.device_hours) == (None, None, None):
        raise SpecError(source, "budget", "set n_trials, timeout or device_hours (only grid has a natural end)")
    return budget


@functools.cache  # read once: every search and train key is checked against it
def _training_fields() -> dict[str, tuple[type, ...]]:
    """Each TrainingArguments field with the plain Python types its annotation admits."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    fields = {}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init:
            continue
        hint = hints[f.name]
        members = (
            typing.get_args(hint)
            if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
            else (hint,)
        )
        accepted = []
        for member in members:
            member = typing.get_origin(member) or member  # list[str] -> list
            if isinstance(member, type) and issubclass(member, enum.Enum):
                member = str  # enum fields take their value names
            if isinstance(member, type):
                accepted.append(member)
        fields[f.name] = tuple(accepted)
    return fields


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    if not accepted or object in accepted:
        return True
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int):
        return int in accepted or float in accepted
    if isinstance(value, float):
        return float in accepted
    if value is None:
        return type(None) in accepted
    return isinstance(value, accepted)


def _choices_for(name: str) -> tuple[str, ...] | None:
    """Names transformers accepts for the string-valued arguments we can check up front."""
    if name == "optim":
        from transformers.training_args import OptimizerNames

        return tuple(o.value for o in OptimizerNames)
    if name == "lr_scheduler_type":
        from transformers.trainer_utils import SchedulerType

        return tuple(s.value for s in SchedulerType)
    return None


def check_training_argument(name: str, value: Any, source, section: str) -> None:
    fields = _training_fields()
    where = f"{section}.{name}"
    if name in RENAMED_TRAINING_ARGUMENTS:
        raise SpecError(source, where, f"not a TrainingArguments field: {RENAMED_TRAINING_ARGUMENTS[name]}")
    if name in RESERVED_TRAINING_ARGUMENTS:
        raise SpecError(source, where, f"set by hpsearch: {RESERVED_TRAINING_ARGUMENTS[name]}")
    if name not in fields:
        raise SpecError(source, where, "unknown key; search and train take transformers TrainingArguments field names")
    if not _fits(value, fields[name]):
        expected = " or ".join(sorted("null" if t is type(None) else t.__name__ for t in fields[name]))
        raise SpecError(source, where, f"must be {expected}, got {value!r}")
    allowed = _choices_for(name)
    if allowed is not None and value not in allowed:
        raise SpecError(source, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")


def _parse_search(raw, source) -> dict[str, ParamSpec]:
    if not raw:
        raise SpecError(source, "search", "must name at least one parameter to search")
    params = {}
    for name, value in raw.items():
        where = f"search.{name}"
        param = _parse_param(name, value, source, where)
        if name == "model" and param.kind != "categorical":
            raise SpecError(source, where, f"must be a list of models (folders or hub ids), got a {param.kind} range")
        values = param.choices if param.kind == "categorical" else (param.low, param.high)
        for v in values:
            if name in FINETUNE_PARAMS:
                check_finetune_param(name, v, source, where)
            else:
                check_training_argument(name, v, source, "search")
        params[name] = param
    return params


def _parse_param(name, value, source, where) -> ParamSpec:
    if isinstance(value, list):
        value = {"type": "categorical", "choices": value}
    if not isinstance(value, dict):
        raise SpecError(source, where, "must be a list of choices or {type: float|int, low, high, log, step}")
    f = _Fields(value, where, source)
    kind = f.get("type", str, allowed=("float", "int", "categorical"))
    if kind == "categorical":
        choices = f.get("choices", list)
        f.finish()
        if not choices:
            raise SpecError(source, f"{where}.choices", "is empty; give at least one choice")
        for c in choices:
            if not (c is None or isinstance(c, (bool, int, float, str))):
                raise SpecError(source, f"{where}.choices", f"{c!r}: choices must be numbers, strings or booleans")
        if len(set(map(repr, choices))) != len(choices):
            raise SpecError(source, f"{where}.choices", "lists a choice twice")
        return ParamSpec(name=name, kind="categorical", choices=tuple(choices))
    number = float if kind == "float" else int
    low = f.get("low", number)
    high = f.get("high", number)
    log = f.get("log", bool, False)
    step = f.get("step", number, None)
    f.finish()
    if low >= high:
        raise SpecError(source, f"{where}.low", f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpecError(source, f"{where}.low", f"a log scale needs low > 0, got {low}")
    if log and step is not None:
        raise SpecError(source, f"{where}.step", "log and step cannot be combined")
    if step is not None and step <= 0:
        raise SpecError(source, f"{where}.step", f"must be > 0, got {step}")
    if step is not None:
        steps = (high - low) / step
        if abs(steps - round(steps)) > 1e-9:
            top = low + math.floor(steps + 1e-9) * step
            raise SpecError(
                source, f"{where}.high", f"high - low must be a multiple of step {step}; e.g. high: {top:g}"
            )
    return ParamSpec(name=name, kind=kind, low=low, high=high, log=log, step=step)


def _parse_train(raw, source, search) -> dict[str, Any]:
    train = {}
    fields = _training_fields()
    for name, value in raw.items():
        check_training_argument(name, value, source, "train")
        if name in search:
            raise SpecError(source, f"train.{name}", "is also in search; a parameter is either searched or fixed")
        if fields[name] == (float,) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        train[name] = value
    if train.get("eval_strategy") == "no":
        raise SpecError(source, "train.eval_strategy", "'no' leaves nothing to prune or score; use steps or epoch")
    return train


def _param_to_raw(p: ParamSpec) -> Any:
    if p.kind == "categorical":
        return list(p.choices)
    out = {"type": p.kind, "low": p.low, "high": p.high}
    if p.log:
        out["log"] = True
    if p.step is not None:
        out["step"] = p.step
    return out
