"""What a task's `prepare` returns: the tokenized splits every trial of a worker shares, and the eval rows
whose generated outputs are scored at every evaluation."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np

from hpsearch.data.subsample import stratified_rows
from hpsearch.spec import GenerationSpec
from hpsearch.spec.sections import EvaluationSpec


@dataclass(frozen=True)
class TaskData:
    train: datasets.Dataset
    eval: datasets.Dataset
    labels: tuple[str, ...]
    """Classification's label names in id order; empty for the generative tasks."""
    fingerprint: str
    """The raw data's fingerprint (recorded on every trial)."""
    generation: Sample | None = None
    """causal-lm, seq2seq: the eval rows whose generated outputs are scored at every evaluation
    (a `Sample`); None when generation is off."""
    eval_by_length: bool = False
    """Evaluate the rows shortest first: a batch is padded to its longest row, so batches of rows of one
    length pad least (bench/eval_order.py: 1.76x faster on 300 Banking77 rows). Only for a task whose metrics do
    not depend on how rows are batched (classification: each row's logits and loss are its own); Trainer's
    eval loss of a language model is a mean of batch means, which another grouping would move."""

    @functools.cached_property
    def evaluated(self) -> datasets.Dataset:
        """The whole eval split, in the order evaluations batch it."""
        return _by_length(self.eval) if self.eval_by_length else self.eval

    def eval_subsample(self, evaluation: EvaluationSpec) -> datasets.Dataset | None:
        """The eval rows of intermediate evaluations (`evaluation.subsample`), or None: the whole split.
        The rows are chosen in the split's order (the same rows whatever order evaluations batch them in)."""
        if evaluation.subsample is None or evaluation.subsample >= len(self.eval):
            return None
        labels = self.eval["labels"] if self.labels else None  # classification's label ids
        rows = self.eval.select(stratified_rows(labels, len(self.eval), evaluation.subsample, evaluation.seed))
        return _by_length(rows) if self.eval_by_length else rows


def _by_length(rows: datasets.Dataset) -> datasets.Dataset:
    """The rows by token count, shortest first, ties in their order."""
    lengths = [len(ids) for ids in rows["input_ids"]]
    return rows.select(np.argsort(lengths, kind="stable"))


@dataclass(frozen=True)
class Sample:
    """The eval rows generated for at every evaluation (the first N: the same for every trial)."""

    inputs: tuple[str, ...]
    """What a person reads as each row's input: the prompt or the source text."""
    encoded: tuple[tuple[int, ...], ...]
    """The token ids given to `generate` for each row."""
    references: tuple[str, ...]
    metrics: tuple[str, ...]
    max_new_tokens: int
    stop_ids: tuple[int, ...] = ()
    """Tokens that end an output besides the model's own EOS: the chat template's end of turn."""


def build_sample(
    rows: Sequence[tuple[str, list[int], str]], settings: GenerationSpec, stop_ids: Sequence[int] = ()
) -> Sample | None:
    """(input text, token ids, reference) of the first `settings.samples` rows; None when generation is off."""
    if not settings.enabled:
        return None
    rows = list(rows)[: settings.samples]
    return Sample(
        inputs=tuple(text for text, _, _ in rows),
        encoded=tuple(tuple(ids) for _, ids, _ in rows),
        references=tuple(reference for _, _, reference in rows),
        metrics=settings.metrics,
        max_new_tokens=settings.max_new_tokens,
        stop_ids=tuple(stop_ids),
    )
