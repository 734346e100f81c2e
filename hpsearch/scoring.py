"""Metrics of generated text against references: built in (exact_match, ROUGE) or named by an
installed package under the `hpsearch.metrics` entry-point group."""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable, Sequence

ENTRY_POINT_GROUP = "hpsearch.metrics"
# A metric takes the generated texts and their references (same order) and returns one number.
Metric = Callable[[list[str], list[str]], float]


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of outputs equal to their reference, ignoring leading and trailing whitespace."""
    pairs = list(zip(predictions, references, strict=True))
    return sum(p.strip() == r.strip() for p, r in pairs) / len(pairs) if pairs else 0.0


@functools.cache
def _rouge_scorer(kind: str):
    from rouge_score import rouge_scorer  # the rouge-score package (Google's reference implementation)

    # Stemming as the summarisation papers (and transformers' run_summarization example) score.
    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


def rouge(kind: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE F-measure (rouge1, rouge2 or rougeL) of the outputs against their references."""
    pairs = list(zip(predictions, references, strict=True))
    if not pairs:
        return 0.0
    scorer = _rouge_scorer(kind)
    return sum(scorer.score(r, p)[kind].fmeasure for p, r in pairs) / len(pairs)


# Every built-in metric is a score in [0, 1]: higher is better (spec.METRICS says "maximize").
BUILT_IN: dict[str, Metric] = {
    "exact_match": exact_match,
    "rouge1": functools.partial(rouge, "rouge1"),
    "rouge2": functools.partial(rouge, "rouge2"),
    "rougeL": functools.partial(rouge, "rougeL"),
}


def installed() -> dict[str, importlib.metadata.EntryPoint]:
    """The metrics installed packages register under `hpsearch.metrics`, by name (not loaded yet)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known() -> tuple[str, ...]:
    """Every metric name a study may use: the built-ins, then the installed ones."""
    return (*BUILT_IN, *sorted(set(installed()) - set(BUILT_IN)))


def load(name: str) -> Metric:
    """The function behind a metric name; a built-in wins over an entry point of the same name."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    found = installed()
    if name not in found:
        raise KeyError(f"no metric {name!r}; built in: {', '.join(BUILT_IN)}; installed: {describe_installed()}")
    return found[name].load()


def describe_installed() -> str:
    """The installed metric names for an error message, with where they come from."""
    found = installed()
    if not found:
        return f"none (a package registers one under the entry-point group {ENTRY_POINT_GROUP})"
    return ", ".join(f"{name} ({ep.value})" for name, ep in sorted(found.items()))


def score(metrics: dict[str, Metric], predictions: list[str], references: list[str]) -> dict[str, float]:
    """Each metric's value on the outputs, as a float."""
    return {name: float(fn(list(predictions), list(references))) for name, fn in metrics.items()}
