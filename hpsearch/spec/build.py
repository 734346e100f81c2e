"""A validated `StudyFile` -> the `Spec` the rest of hpsearch reads: the rules that span keys (searched
or fixed, eval_split or eval_fraction, grid needs a discrete space, ...), every error at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hpsearch.errors import SpecError
from hpsearch.spec.catalog import AUGMENT_OPS, GENERATED_METRICS, describe_installed_metrics, known_metrics
from hpsearch.spec.choosers import PRUNER_TYPES, SAMPLER_TYPES
from hpsearch.spec.messages import raise_all, spec_errors
from hpsearch.spec.paths import resolve_path
from hpsearch.spec.schema import SCHEMA_VERSION, StudyFile
from hpsearch.spec.search import parse_param, parse_train
from hpsearch.spec.sections import FinetuneSpec, GenerationSpec, ModelSpec, ObjectiveSpec
from hpsearch.spec.tasks import TASK_FACTS
from hpsearch.spec.types import METRICS, ParamSpec, Spec

# Sections whose keys may be null for "the default" (train and search values are passed on as given).
_OPEN = ("train", "search")


class Problems(list):
    """The errors found so far in one study file."""

    def __init__(self, source: str | Path) -> None:
        super().__init__()
        self.source = source

    def add(self, field: str, message: str) -> None:
        self.append(SpecError(self.source, field, message))


def _without_nulls(raw: dict) -> dict:
    """`key: null` means the default, as it always has (and as a stored spec writes unset keys)."""
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key not in _OPEN:
            value = {k: v for k, v in value.items() if v is not None}
        if value is not None:
            out[key] = value
    return out


def _drop_replaced_options(raw: dict, from_cli: set[str]) -> None:
    """`--set sampler.type=random` on a file whose TPE sampler has TPE-only options drops those
    options rather than failing: the file's options belonged to the type the command line replaced."""
    for section, table in (("sampler", SAMPLER_TYPES), ("pruner", PRUNER_TYPES)):
        given = raw.get(section)
        if f"{section}.type" not in from_cli or not isinstance(given, dict) or given.get("type") not in table:
            continue
        fields = table[given["type"]].model_fields
        raw[section] = {k: v for k, v in given.items() if k in fields or f"{section}.{k}" in from_cli}


def parse_spec(raw: dict, source: Path, from_cli: set[str] = frozenset()) -> Spec:
    """Validate a study file's mapping (after overrides) into a Spec; raises every error at once."""
    source = Path(source)
    raw = _without_nulls(raw)
    _drop_replaced_options(raw, from_cli)
    try:
        study = StudyFile.model_validate(raw)
    except ValidationError as exc:
        raise_all(spec_errors(exc, StudyFile, source))
    problems = Problems(source)
    spec = _build(study, raw, source, from_cli, problems)
    raise_all(problems)
    try:
        json.dumps(spec.to_dict())
    except TypeError as exc:  # e.g. a YAML value with no JSON form; the spec is stored as JSON
        raise SpecError(source, "", f"a value cannot be stored: {exc}") from None
    return spec


def _build(study: StudyFile, raw: dict, source: Path, from_cli: set[str], problems: Problems) -> Spec:
    task = TASK_FACTS[study.task]
    data = _data(study, raw, source, from_cli, problems)
    generation = _generation(study, raw, problems)
    if task.name == "causal-lm" and generation.enabled and generation.max_new_tokens >= data.max_length:
        problems.add(
            "generation.max_new_tokens",
            f"{generation.max_new_tokens} leaves no room for the prompt: prompt and output share "
            f"data.max_length ({data.max_length}); give fewer tokens",
        )
    objective = _objective(study, generation, problems)
    search: dict[str, ParamSpec] = {}
    if not study.search:
        problems.add("search", "must name at least one parameter to search")
    for name, value in study.search.items():
        param = parse_param(name, value, problems)
        if param is not None:
            search[name] = param
    model = _model(study, search, source, from_cli, problems)
    train = parse_train(study.train, search, problems)
    pruner = study.pruner
    if objective.cost is not None and pruner.type != "none":
        # Optuna's pruners compare one reported value per step; a multi-objective study has no report.
        problems.add(
            "pruner.type",
            f"{pruner.type!r} cannot run with objective.cost: Optuna prunes single-objective studies only; "
            "use none (the default with a cost) or drop objective.cost",
        )
    if study.sampler.type != "grid" and not (
        study.budget.n_trials or study.budget.timeout or study.budget.device_hours
    ):
        problems.add("budget", "set n_trials, timeout or device_hours (only grid has a natural end)")
    stopping = study.early_stopping
    if stopping.enabled and pruner.type == "hyperband" and pruner.options.get("max_resource") == "auto":
        # Hyperband's "auto" takes its budget from the first completed trial's last step, once and
        # for all; a trial stopped early would size every bracket for its shorter run.
        problems.add(
            "pruner.max_resource",
            "with early_stopping, give hyperband the trials' training samples (or 1.0, all of them): 'auto' reads it "
            "from the first completed trial, which early stopping can cut short",
        )
    finetune = _finetune(study, raw, search, problems)
    augmentation = _augmentation(study, raw, search, problems)
    if model.save_best and objective.cost is not None:
        problems.add(
            "model.save_best",
            "with objective.cost there is no one best trial but a Pareto front; drop save_best, then "
            "export the trial you pick (hpsearch export --trial N) and retrain it with hpsearch train",
        )
    splits = ("data.length_split", study.data.length_split > 1)  # several forwards before DDP's backward: unproven
    for key, on in (("model.save_best", model.save_best), ("generation", generation.enabled), splits):
        if on and study.resources.devices_per_trial > 1:  # rank 0 alone would save or generate: not supported
            problems.add(key, "is not supported with resources.devices_per_trial > 1; turn it off or use 1")
    if study.sampler.type == "grid":
        for param in search.values():
            if not param.is_discrete:
                problems.add(
                    f"search.{param.name}", "the grid sampler needs a discrete space: give a list of choices or a step"
                )
    return Spec(
        name=study.name,
        task=task.name,
        model=model,
        data=data,
        objective=objective,
        search=search,
        train=train,
        sampler=study.sampler,
        pruner=pruner,
        budget=study.budget,
        storage=study.storage,
        divergence_factor=study.divergence.loss_factor if study.divergence.enabled else None,
        heartbeat=study.heartbeat,
        early_stopping=stopping,
        finetune=finetune,
        source=str(source),
        augmentation=augmentation,
        generation=generation,
        evaluation=study.evaluation,
        confirm=study.confirm,
        resources=study.resources,
        schema_version=SCHEMA_VERSION,
    )


def _data(study: StudyFile, raw: dict, source: Path, from_cli: set[str], problems: Problems):
    data, given = study.data, set(raw["data"])
    own = TASK_FACTS[study.task].data_keys
    for other in TASK_FACTS.values():
        for key in other.data_keys:
            if other.name != study.task and key not in own and key in given:
                problems.add(f"data.{key}", f"is for task {other.name}, not {study.task}")
    update: dict[str, Any] = {"path": resolve_path(data.path, "data.path", source, from_cli)}
    if data.eval_fraction is not None:
        if "eval_split" in given:
            problems.add("data.eval_fraction", "set eval_split or eval_fraction, not both")
        update["eval_split"] = None
    if data.messages_column is not None:
        for key in ("prompt_column", "completion_column"):
            if key in given:
                problems.add(f"data.{key}", "set messages_column or prompt/completion columns, not both")
    return data.model_copy(update=update)


def _model(study: StudyFile, search: dict, source: Path, from_cli: set[str], problems: Problems) -> ModelSpec:
    """The model section; without name_or_path when search.model names the models."""
    section, searched = study.model, "model" in study.search
    path = section.name_or_path
    if searched and path is not None:
        problems.add("model.name_or_path", "is also in search (search.model); the model is searched or fixed, not both")
    if not searched and path is None:
        problems.add("model.name_or_path", "is required")
    if section.dropout is not None and "dropout" in study.search:
        problems.add("model.dropout", "is also in search (search.dropout); searched or fixed, not both")
    choices: dict[str, str] = {}
    if "model" in search:
        # Each choice as written -> a local path (relative to the study file, or to the cwd for --set)
        # or a hub id, like model.name_or_path; the param keeps the name the user wrote.
        given = search["model"].choices
        choices = {c: resolve_path(c, "search.model", source, from_cli) for c in given}
        if len(set(choices.values())) != len(choices):
            problems.add("search.model", f"two choices name the same model: {', '.join(given)}")
    resolved = None if path is None else resolve_path(path, "model.name_or_path", source, from_cli)
    return ModelSpec(**{**section.model_dump(), "name_or_path": resolved, "choices": choices})


def _generation(study: StudyFile, raw: dict, problems: Problems) -> GenerationSpec:
    """Off unless the task generates by default (seq2seq) or the study names metrics (causal-lm)."""
    task = TASK_FACTS[study.task]
    section = study.generation
    if task.generation is None:
        if section is not None:
            generating = ", ".join(t.name for t in TASK_FACTS.values() if t.generation is not None)
            problems.add("generation", f"is for tasks {generating}, not {task.name}")
        return GenerationSpec()
    if section is None:
        return GenerationSpec(metrics=task.generation)
    if "metrics" not in raw["generation"]:
        if not task.generation:
            problems.add("generation.metrics", "is required")
        section = section.model_copy(update={"metrics": task.generation})
    known = known_metrics()
    for name in section.metrics:
        if name in task.metrics:
            problems.add("generation.metrics", f"{name!r} is measured by {task.name} already, not generated")
        elif name not in known:
            problems.add(
                "generation.metrics",
                f"{name!r} is not a metric; built in: {', '.join(GENERATED_METRICS)}; "
                f"installed: {describe_installed_metrics()}",
            )
    if len(set(section.metrics)) != len(section.metrics):
        problems.add("generation.metrics", "names a metric twice")
    return section


def _objective(study: StudyFile, generation: GenerationSpec, problems: Problems) -> ObjectiveSpec:
    """Any metric the task measures: its own, or one the generation section scores. `eval_accuracy`
    is `accuracy`: transformers reports (and metric_for_best_model accepts) the prefixed name."""
    task = TASK_FACTS[study.task]
    section = study.objective
    measured = (*task.metrics, *generation.metrics)
    metric = section.metric
    if metric is not None and metric.startswith("eval_") and metric not in measured:
        metric = metric.removeprefix("eval_")
    if metric is None:
        metric = task.default_objective
        if metric not in measured:
            problems.add(
                "objective.metric",
                f"is required: the {task.name} default, {metric}, is not among generation.metrics; "
                f"allowed: {', '.join(measured)}",
            )
    elif metric not in measured:
        problems.add("objective.metric", f"{section.metric!r} is not allowed; allowed: {', '.join(measured)}")
    direction = section.direction or METRICS.get(metric)
    if direction is None:
        problems.add("objective.direction", f"is required for {metric!r}, a user metric: maximize or minimize")
        direction = "maximize"
    if section.at == "best" and study.evaluation.subsample is not None:
        why = "the best of noisy subsample scores overstates the trial, and is not a whole-split score"
        problems.add("objective.at", f"'best' cannot run with evaluation.subsample ({why}): drop one of them")
    return ObjectiveSpec(metric=metric, direction=direction, cost=section.cost, at=section.at)


def _finetune(study: StudyFile, raw: dict, search: dict, problems: Problems) -> FinetuneSpec:
    spec = FinetuneSpec(**study.lora.model_dump(), method=study.finetune)
    if "finetune" in search:
        if "finetune" in raw:
            problems.add("finetune", "is also in search; a parameter is either searched or fixed")
    elif study.finetune == "full":  # LoRA settings would change nothing: say so rather than ignore them
        used = [f"search.{n}" for n in search if n.startswith("lora_")] + (["lora"] if raw.get("lora") else [])
        if used:
            problems.add(used[0], "is used only with finetune: lora (set it, or search finetune)")
    return spec


def _augmentation(study: StudyFile, raw: dict, search: dict, problems: Problems):
    """`augmentation: {ops, probability}`; the probability is fixed here or searched, not both."""
    section = study.augmentation
    ops, given = section.ops, "probability" in raw.get("augmentation", {})
    if len(set(ops)) != len(ops):
        problems.add("augmentation.ops", "lists an operation twice")
    if "augmentation_probability" in search:
        if not ops:
            problems.add(
                "search.augmentation_probability", f"needs augmentation.ops, some of: {', '.join(AUGMENT_OPS)}"
            )
        if given:
            problems.add(
                "augmentation.probability",
                "is also in search (augmentation_probability); a parameter is either searched or fixed",
            )
        return section.model_copy(update={"probability": None})
    if ops and not given:
        problems.add(
            "augmentation.probability",
            "is required with ops: a number in [0, 1], or search it as augmentation_probability",
        )
    if section.probability and not ops:
        problems.add("augmentation.ops", f"is empty; name some of: {', '.join(AUGMENT_OPS)}")
    return section
