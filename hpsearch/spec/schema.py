"""The whole study file as one pydantic model (`StudyFile`), its JSON Schema, and the schema version
stored with every study (resume decides compatibility from it)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from hpsearch.spec.choosers import Pruner, Sampler
from hpsearch.spec.fields import Section, allowed, fail, rule
from hpsearch.spec.sections import (
    AugmentSpec,
    BudgetSpec,
    ConfirmSpec,
    DataSpec,
    DivergenceSection,
    EarlyStoppingSpec,
    EvaluationSpec,
    GenerationSpec,
    HeartbeatSpec,
    LoraSection,
    ModelSection,
    ObjectiveSection,
    ResourcesSpec,
)
from hpsearch.spec.storage_url import url_problem
from hpsearch.spec.tasks import TASKS

# The shape of the stored spec. A study stored without one is version 1. A bump that only adds keys
# whose default is what every older study did keeps resume working (a missing stored key counts as
# its default); a bump that changes what a stored key means needs a migration in resume_defaults().
# Version 3 keys intermediate values (what pruners compare) by training samples seen, not by optimizer
# step: a study stored before it reads and reports, but does not resume (controller.check_resume).
SCHEMA_VERSION = 3
SAMPLES_AXIS_SINCE = 3

Scalar = bool | int | float | str | None


class SearchRange(Section):
    """One searched parameter: a range (low, high; `type` inferred from them: two integers give an int
    range) or, written as a plain list, categorical choices."""

    type: Literal["float", "int", "categorical"] | None = None
    """float, int or categorical; inferred when left out (from choices, or from the bounds)."""
    low: int | float | None = None
    """The lowest value (ranges)."""
    high: int | float | None = None
    """The highest value (ranges)."""
    log: bool = False
    """Sample on a log scale (needs low > 0)."""
    step: int | float | None = None
    """Only multiples of step above low (a discrete range, which grid can search)."""
    choices: list[Scalar] | None = None
    """The values to choose from (categorical)."""


def _choices_as_range(value: Any) -> Any:
    return {"type": "categorical", "choices": value} if isinstance(value, list) else value


SearchParam = Annotated[
    SearchRange, BeforeValidator(_choices_as_range, json_schema_input_type=list[Scalar] | SearchRange)
]


def _model_as_section(value: Any) -> Any:
    return {"name_or_path": value} if isinstance(value, str) else value


def _usable_url(url: str) -> str:
    problem = url_problem(url)
    if problem is not None:
        raise fail(problem)
    return url


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")  # NAME.db-wal and friends fit a file name (255 bytes)


class StudyFile(Section):
    """A study file: what to fine-tune, on what data, what to search and how long."""

    name: Annotated[str, rule(lambda v: _NAME.fullmatch(v), "{v!r}: use at most 200 letters, digits, '-', '_' and '.'")]
    """The study's name: its database (NAME.db beside the study file) and report are named after it."""
    task: Literal[TASKS]
    """What the model learns."""
    schema_version: Annotated[
        int, rule(lambda v: 1 <= v <= SCHEMA_VERSION, f"must be 1 to {SCHEMA_VERSION}, got {{v}}")
    ] = SCHEMA_VERSION
    """The study-file schema the file is written for (stored with each study)."""
    model: Annotated[ModelSection, BeforeValidator(_model_as_section, json_schema_input_type=str | ModelSection)] = (
        ModelSection()
    )
    """The model: a folder or hub id, or a mapping with name_or_path and its settings."""
    data: DataSpec
    """The dataset."""
    objective: ObjectiveSection = ObjectiveSection()
    """What the study optimizes."""
    search: dict[str, SearchParam]
    """The searched parameters: TrainingArguments field names, or hpsearch's settings (finetune,
    lora_r, lora_alpha, lora_dropout, lora_target_modules, dropout, model, augmentation_probability)."""
    train: dict[str, Any] = {}
    """Fixed TrainingArguments for every trial (field names as transformers spells them)."""
    evaluation: EvaluationSpec = EvaluationSpec()
    """When trials are evaluated (on training samples seen), and on how many eval rows."""
    sampler: Sampler = Field(default_factory=lambda: _default_sampler())
    """How parameters are chosen: grid, random, tpe (default), gp, qmc or nsga2, with that type's options."""
    pruner: Pruner | None = None
    """How trials are stopped early: none, median, percentile, successive-halving or hyperband (the
    default; none with objective.cost), with that type's options."""
    budget: BudgetSpec = BudgetSpec()
    """When the study ends: one of n_trials, timeout, device_hours is required (but for grid)."""
    confirm: ConfirmSpec = ConfirmSpec()
    """What `hpsearch confirm` trains again after the search: the top_k configs, seeds new seeds each."""
    storage: Annotated[str, AfterValidator(_usable_url)] | None = None
    """An Optuna storage URL, or grpc://HOST:PORT of an `hpsearch storage-server`; default: sqlite:///NAME.db beside
    the study file."""
    divergence: DivergenceSection = DivergenceSection()
    """Pruning of trials whose loss diverges."""
    heartbeat: HeartbeatSpec = HeartbeatSpec()
    """Finding and re-running trials whose worker died."""
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    """Stopping a trial whose objective stopped improving."""
    resources: ResourcesSpec = ResourcesSpec()
    """What one trial holds: devices_per_trial processes (DDP) when above 1."""
    finetune: Annotated[
        str,
        allowed(lambda v: v in ("full", "lora"), "full or lora"),
        Field(json_schema_extra={"enum": ["full", "lora"]}),
    ] = "full"
    """full (all weights) or lora (an adapter; needs peft)."""
    lora: LoraSection = LoraSection()
    """The LoRA adapter's fixed settings."""
    augmentation: AugmentSpec = AugmentSpec()
    """Augmentation of the train split, per trial (off by default)."""
    generation: GenerationSpec | None = None
    """causal-lm and seq2seq: metrics of outputs generated for a fixed eval sample."""

    @model_validator(mode="before")
    @classmethod
    def _default_types(cls, raw: Any) -> Any:
        """A sampler or pruner without `type` is the default type (the pruner's depends on the cost)."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        objective = raw.get("objective")
        cost = objective.get("cost") if isinstance(objective, dict) else None
        for key, default in (("sampler", "tpe"), ("pruner", "hyperband" if cost is None else "none")):
            section = raw.get(key, {})
            if isinstance(section, dict) and "type" not in section:
                raw[key] = {"type": default, **section}
        return raw


def _default_sampler():
    from hpsearch.spec.choosers import TpeSampler

    return TpeSampler()


def stored_version(stored: dict[str, Any]) -> int:
    """The schema version of a stored spec; one stored before versions existed is version 1."""
    return int(stored.get("schema_version", 1))


def resume_defaults() -> dict[str, dict[str, Any]]:
    """The keys of each section that has a fixed default, as the stored spec writes them.

    The rule every version bump keeps: a key added to a section defaults to what every study did
    before the key existed, so a stored study that lacks it ran with that default, and resume
    compares against it (turning a new feature on for an old study is refused, like any change).
    A bump that changes what an existing key means must migrate the stored spec instead.
    """
    from hpsearch.spec.sections import AugmentSpec as Augment
    from hpsearch.spec.sections import GenerationSpec as Generation

    # Defaults that depend on the task (objective.metric, generation.metrics) are never filled in.
    resolved = {"metric", "direction", "metrics"}
    out: dict[str, dict[str, Any]] = {}
    for name, model in (
        ("model", ModelSection),
        ("data", DataSpec),
        ("objective", ObjectiveSection),
        ("early_stopping", EarlyStoppingSpec),
        ("evaluation", EvaluationSpec),
        ("lora", LoraSection),
        ("augmentation", Augment),
        ("generation", Generation),
        ("resources", ResourcesSpec),
    ):
        fields = model.model_fields.items()
        out[name] = {
            k: list(f.default) if isinstance(f.default, tuple) else f.default
            for k, f in fields
            if not f.is_required() and k not in resolved
        }
    return out
