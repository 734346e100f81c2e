"""The `Spec` the rest of hpsearch reads (its sections are the schema's models), one searched
parameter (`ParamSpec`), and the tables of what a study may name, kept importable under old names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpsearch.errors import SpecError
from hpsearch.spec.catalog import GENERATED_METRICS
from hpsearch.spec.choosers import PRUNERS, SAMPLERS
from hpsearch.spec.paths import FILE_SUFFIXES
from hpsearch.spec.schema import SCHEMA_VERSION
from hpsearch.spec.sections import (
    COSTS,
    AugmentSpec,
    BudgetSpec,
    ConfirmSpec,
    DataSpec,
    EarlyStoppingSpec,
    EvaluationSpec,
    FinetuneSpec,
    GenerationSpec,
    HeartbeatSpec,
    ModelSpec,
    ObjectiveSpec,
    ResourcesSpec,
)
from hpsearch.spec.tasks import TASK_FACTS, TASKS

METRICS = {"accuracy": "maximize", "f1_macro": "maximize", "loss": "minimize", "perplexity": "minimize"}
METRICS.update(dict.fromkeys(GENERATED_METRICS, "maximize"))  # text metrics of generated outputs: scores

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

    def to_raw(self) -> Any:
        """As a study file writes it (and the stored spec keeps it)."""
        if self.kind == "categorical":
            return list(self.choices)
        out = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class Spec:
    """A validated study: built by `parse_spec`, read by everything after it."""

    name: str
    task: str
    model: ModelSpec
    data: DataSpec
    objective: ObjectiveSpec
    search: dict[str, ParamSpec]
    train: dict[str, Any]
    sampler: Any  # one of hpsearch.spec.choosers' samplers: .type, .options
    pruner: Any  # one of its pruners
    budget: BudgetSpec
    storage: str | None
    divergence_factor: float | None
    """Prune a trial whose logged train loss is NaN, infinite, or above this multiple of its first."""
    heartbeat: HeartbeatSpec
    early_stopping: EarlyStoppingSpec
    finetune: FinetuneSpec
    source: str
    """The study file this spec was read from."""
    augmentation: AugmentSpec = AugmentSpec()
    generation: GenerationSpec = GenerationSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    confirm: ConfirmSpec = ConfirmSpec()
    resources: ResourcesSpec = ResourcesSpec()
    schema_version: int = SCHEMA_VERSION
    """The schema the stored spec follows (hpsearch.spec.schema.SCHEMA_VERSION when parsed)."""

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (saved with the study; resume compares it)."""
        own = set(TASK_FACTS[self.task].data_keys)
        other = {k for facts in TASK_FACTS.values() for k in facts.data_keys} - own
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "name": self.name,
            "task": self.task,
            "model": self.model.model_dump(exclude=set() if self.model.choices else {"choices"}),
            "data": self.data.model_dump(exclude=other),
            "objective": self.objective.model_dump(),
            "search": {name: p.to_raw() for name, p in self.search.items()},
            "train": dict(self.train),
            "sampler": {"type": self.sampler.type, **self.sampler.options},
            "pruner": self.pruner.model_dump(include={"type", "tolerance_se"} | set(self.pruner.options)),
            "budget": self.budget.model_dump(),
            "storage": self.storage,
            "heartbeat": self.heartbeat.model_dump(),
            "early_stopping": self.early_stopping.model_dump(),
            "evaluation": self.evaluation.model_dump(),
            "confirm": self.confirm.model_dump(),
            "source": self.source,
        }
        if TASK_FACTS[self.task].generation is not None:
            out["generation"] = {**self.generation.model_dump(), "metrics": list(self.generation.metrics)}
        if self.resources.devices_per_trial > 1:  # a study on one device per trial stores what it always did
            out["resources"] = self.resources.model_dump()
        tuning = self.finetune.model_dump()
        out["finetune"] = tuning.pop("method")
        if out["finetune"] == "lora" or "finetune" in self.search:  # LoRA settings only where they apply
            out["lora"] = tuning
        factor = self.divergence_factor
        out["divergence"] = {"enabled": False} if factor is None else {"loss_factor": factor}
        out["augmentation"] = {"ops": list(self.augmentation.ops), "probability": self.augmentation.probability}
        return out


__all__ = [
    "COSTS",
    "FILE_SUFFIXES",
    "PRUNERS",
    "SAMPLERS",
    "TASKS",
    "AugmentSpec",
    "BudgetSpec",
    "DataSpec",
    "EarlyStoppingSpec",
    "ConfirmSpec",
    "EvaluationSpec",
    "FinetuneSpec",
    "GenerationSpec",
    "HeartbeatSpec",
    "ModelSpec",
    "ObjectiveSpec",
    "ParamSpec",
    "ResourcesSpec",
    "Spec",
    "SpecError",
]
