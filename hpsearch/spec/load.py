"""Study file (YAML) plus `--set` overrides -> a validated, frozen `Spec`.

Every error names the file, the field, what was given and what is allowed, and is raised as
`SpecError` before anything is written. The parts of a spec and the tables of what they allow are in
`spec_types` (re-exported here); `TrainingArguments` values are checked by `training_args`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from hpsearch.spec.catalog import AUGMENT_OPS, GENERATED_METRICS, describe_installed_metrics, known_metrics
from hpsearch.spec.training_args import check_training_argument, training_fields
from hpsearch.spec.types import (
    COSTS,
    DEFAULT_OBJECTIVE,
    FILE_SUFFIXES,
    METRICS,
    PRUNERS,
    SAMPLERS,
    SETTING_PARAMS,
    TASK_DATA_KEYS,
    TASK_GENERATION,
    TASK_METRICS,
    TASKS,
    AugmentSpec,
    BudgetSpec,
    DataSpec,
    EarlyStoppingSpec,
    FinetuneSpec,
    GenerationSpec,
    HeartbeatSpec,
    ModelSpec,
    ObjectiveSpec,
    ParamSpec,
    PrunerSpec,
    SamplerSpec,
    Spec,
    SpecError,
)

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
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in kinds)  # True is an int
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
    known = known_metrics()
    for name in metrics:
        if not isinstance(name, str):
            raise SpecError(source, "generation.metrics", f"{name!r}: give metric names, e.g. [rougeL]")
        if name in TASK_METRICS[task]:
            raise SpecError(source, "generation.metrics", f"{name!r} is measured by {task} already, not generated")
        if name not in known:
            raise SpecError(
                source,
                "generation.metrics",
                f"{name!r} is not a metric; built in: {', '.join(GENERATED_METRICS)}; "
                f"installed: {describe_installed_metrics()}",
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
    kinds, ok, allowed = SETTING_PARAMS[name]
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
            if name in SETTING_PARAMS:
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
    fields = training_fields()
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
