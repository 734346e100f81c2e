"""What each task is, for the study file: the metrics it measures, the data keys it reads, whether it
generates, its default objective. One table; `hpsearch.tasks` implements the tasks it names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskFacts:
    name: str
    metrics: tuple[str, ...]
    """Measured on the eval split by every trial (recorded as eval_<name>)."""
    data_keys: tuple[str, ...]
    """The data keys this task reads, besides those every task has."""
    generation: tuple[str, ...] | None
    """None: the task does not generate; else the metrics its generation section scores by default
    (empty: generation is off unless the study names metrics)."""
    default_objective: str
    """The objective when the study names none (it must be measured)."""


TASK_FACTS: dict[str, TaskFacts] = {
    t.name: t
    for t in (
        TaskFacts(
            "sequence-classification",
            metrics=("accuracy", "f1_macro", "loss"),
            data_keys=("text_column", "label_column"),
            generation=None,
            default_objective="accuracy",
        ),
        TaskFacts(
            "causal-lm",
            metrics=("loss", "perplexity"),
            data_keys=("prompt_column", "completion_column", "messages_column", "packing"),
            generation=(),
            default_objective="loss",
        ),
        TaskFacts(
            "seq2seq",
            metrics=("loss",),
            data_keys=("source_column", "target_column", "max_target_length"),
            generation=("rouge1", "rouge2", "rougeL"),
            default_objective="rougeL",
        ),
    )
}
TASKS = tuple(TASK_FACTS)
