"""The rules within one section of a study file (data, model, generation, objective, finetune,
augmentation), each adding its errors to the file's `Problems`; spec/build.py applies them and the rules
that span sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.errors import SpecError, shown
from hpsearch.spec.catalog import AUGMENT_OPS, GENERATED_METRICS, describe_installed_metrics, known_metrics
from hpsearch.spec.paths import resolve_path
from hpsearch.spec.schema import StudyFile
from hpsearch.spec.sections import FinetuneSpec, GenerationSpec, ModelSpec, ObjectiveSpec
from hpsearch.spec.tasks import TASK_FACTS
from hpsearch.spec.types import METRICS


class Problems(list):
    """The errors found so far in one study file."""

    def __init__(self, source: str | Path) -> None:
        super().__init__()
        self.source = source

    def add(self, field: str, message: str) -> None:
        self.append(SpecError(self.source, field, message))

    def append(self, error: SpecError) -> None:
        """An error said once, however many values of a key found it (a range's low and high)."""
        if str(error) not in map(str, self):
            super().append(error)


def data(study: StudyFile, raw: dict, source: Path, from_cli: set[str], problems: Problems):
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
    pairs = ("prompt_column", "completion_column")
    if data.messages_column is not None:
        for key in pairs:
            # Only a column named other than its default: a stored spec (an export's manifest) writes them all.
            if key in given and getattr(data, key) != type(data).model_fields[key].default:
                problems.add(f"data.{key}", "set messages_column or prompt/completion columns, not both")
    # Each column the task reads is a column of its own (chats are read instead of prompt/completion pairs).
    read: dict[str, str] = {}
    for key in own:
        column = getattr(data, key)
        if key.endswith("_column") and column is not None and not (data.messages_column and key in pairs):
            if column in read:
                problems.add(
                    f"data.{key}", f"{shown(column)} is also data.{read[column]}; each needs a column of its own"
                )
            read.setdefault(column, key)
    return data.model_copy(update=update)


def model(study: StudyFile, search: dict, source: Path, from_cli: set[str], problems: Problems) -> ModelSpec:
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


def generation(study: StudyFile, raw: dict, problems: Problems) -> GenerationSpec:
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
            problems.add("generation.metrics", f"{shown(name)} is measured by {task.name} already, not generated")
        elif name not in known:
            problems.add(
                "generation.metrics",
                f"{shown(name)} is not a metric; built in: {', '.join(GENERATED_METRICS)}; "
                f"installed: {describe_installed_metrics()}",
            )
    if len(set(section.metrics)) != len(section.metrics):
        problems.add("generation.metrics", "names a metric twice")
    # What the objective may name: the metrics refused above are not measured.
    return section.model_copy(update={"metrics": tuple(m for m in section.metrics if m in known)})


def objective(study: StudyFile, generation: GenerationSpec, problems: Problems) -> ObjectiveSpec:
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
        problems.add("objective.metric", f"{shown(section.metric)} is not allowed; allowed: {', '.join(measured)}")
    direction = section.direction or METRICS.get(metric)
    if direction is None:
        if metric in measured:  # a metric refused above needs no direction yet
            problems.add("objective.direction", f"is required for {shown(metric)}, a user metric: maximize or minimize")
        direction = "maximize"
    if section.at == "best" and study.evaluation.subsample is not None:
        why = "the best of noisy subsample scores overstates the trial, and is not a whole-split score"
        problems.add("objective.at", f"'best' cannot run with evaluation.subsample ({why}): drop one of them")
    return ObjectiveSpec(metric=metric, direction=direction, cost=section.cost, at=section.at)


def finetune(study: StudyFile, raw: dict, search: dict, problems: Problems) -> FinetuneSpec:
    spec = FinetuneSpec(**study.lora.model_dump(), method=study.finetune)
    if "finetune" in search:
        if "finetune" in raw:
            problems.add("finetune", "is also in search; a parameter is either searched or fixed")
    elif study.finetune == "full":  # LoRA settings would change nothing: say so rather than ignore them
        used = [f"search.{n}" for n in search if n.startswith("lora_")] + (["lora"] if raw.get("lora") else [])
        if used:
            problems.add(used[0], "is used only with finetune: lora (set it, or search finetune)")
    return spec


def augmentation(study: StudyFile, raw: dict, search: dict, problems: Problems):
    """`augmentation: {ops, probability}`; the probability is fixed here or searched, not both."""
    section = study.augmentation
    ops, given = section.ops, "probability" in raw.get("augmentation", {})
    if len(set(ops)) != len(ops):
        problems.add("augmentation.ops", "lists an operation twice")
    if "augmentation_probability" in study.search:  # as written: a refused range is still searched
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
