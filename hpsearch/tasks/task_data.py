"""What a task's `prepare` returns: the tokenized splits every trial of a worker shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets


@dataclass(frozen=True)
class TaskData:
    train: datasets.Dataset
    eval: datasets.Dataset
    labels: tuple[str, ...]
    """Classification's label names in id order; empty for the generative tasks."""
    fingerprint: str
    """The raw data's fingerprint (recorded on every trial)."""
    generation: Any = None
    """causal-lm, seq2seq: the eval rows whose generated outputs are scored at every evaluation
    (a `generation.Sample`); None when generation is off."""
