"""A validated `StudyFile` -> the `Spec` the rest of hpsearch reads: the rules that span keys (searched
or fixed, eval_split or eval_fraction, grid needs a discrete space, ...), every error at once."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hpsearch.errors import SpecError
from hpsearch.spec import rules
from hpsearch.spec.choosers import PRUNER_TYPES, SAMPLER_TYPES
from hpsearch.spec.messages import raise_all, spec_errors
from hpsearch.spec.rules import Problems
from hpsearch.spec.schema import SCHEMA_VERSION, StudyFile
from hpsearch.spec.search import parse_param, parse_train
from hpsearch.spec.tasks import TASK_FACTS
from hpsearch.spec.types import ParamSpec, Spec

# Sections whose keys may be null for "the default" (train and search values are passed on as given).
_OPEN = ("train", "search")


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
    data = rules.data(study, raw, source, from_cli, problems)
    generation = rules.generation(study, raw, problems)
    if task.name == "causal-lm" and generation.enabled and generation.max_new_tokens >= data.max_length:
        problems.add(
            "generation.max_new_tokens",
            f"{generation.max_new_tokens} leaves no room for the prompt: prompt and output share "
            f"data.max_length ({data.max_length}); give fewer tokens",
        )
    objective = rules.objective(study, generation, problems)
    search: dict[str, ParamSpec] = {}
    if not study.search:
        problems.add("search", "must name at least one parameter to search")
    for name, value in study.search.items():
        param = parse_param(name, value, problems)
        if param is not None:
            search[name] = param
    model = rules.model(study, search, source, from_cli, problems)
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
    finetune = rules.finetune(study, raw, search, problems)
    augmentation = rules.augmentation(study, raw, search, problems)
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
