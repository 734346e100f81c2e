"""What every task module provides, the same members in each: the data it reads, how it encodes and
augments rows, the model it builds, its collator and its metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import datasets

from hpsearch.data import sources
from hpsearch.spec import Spec
from hpsearch.tasks.task_data import TaskData


class Task(Protocol):
    """A task module (`hpsearch.tasks.TASKS[spec.task]`); tests/test_tasks.py checks that each has every
    member with the signature below."""

    PEFT_TASK_TYPE: str
    """What peft adapts the model for (finetune: lora)."""

    preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None
    """Trainer's hook reducing each eval batch's logits on the device before they are kept (to what
    compute_metrics reads); None where compute_metrics reads the logits themselves."""

    compute_metrics: Callable[[Any], dict[str, float]] | None
    """Trainer's compute_metrics: the metrics beyond the eval loss, and their standard errors."""

    derived_metrics: Callable[[dict[str, float]], dict[str, float]] | None
    """Metrics computed from an evaluation's others (perplexity from the eval loss); None where none are."""

    def columns(self, spec: Spec) -> dict[str, str]:
        """The data's columns this task reads, under the names it reads them by."""
        ...

    def label_names(self, raw: sources.RawData, spec: Spec) -> tuple[str, ...]:
        """The label order (classification); empty for the generative tasks."""
        ...

    def encode_train(
        self, spec: Spec, split: datasets.Dataset, tokenizer: Any, labels: tuple[str, ...] = ()
    ) -> datasets.Dataset:
        """The train split tokenized as `prepare` tokenizes it (augmentation re-encodes it per trial)."""
        ...

    def augment_inputs(self, row: dict, change: Callable[[str], str]) -> dict:
        """The row with its input text changed by `change` (never its label or reference)."""
        ...

    def prepare(self, spec: Spec, raw: sources.RawData, tokenizer: Any) -> TaskData:
        """Both splits tokenized once (cached on disk), and the generation sample where there is one."""
        ...

    def build_model(self, model_path: str, labels: tuple[str, ...] = (), **config_overrides: Any) -> Any:
        """The pretrained model (with a new head for `labels`); `config_overrides` go to its config."""
        ...

    def collator(self, tokenizer: Any, model: Any = None) -> Any:
        """The batch collator; `model` builds the decoder's inputs where the task needs it (seq2seq)."""
        ...
