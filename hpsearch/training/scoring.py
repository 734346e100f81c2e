"""Metrics of generated text against references: built in (exact_match, ROUGE) or named by an
installed package under the `hpsearch.metrics` entry-point group."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from hpsearch.spec.catalog import GENERATED_METRICS, describe_installed_metrics, installed_metrics

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


def _builtin(name: str) -> Metric:
    return exact_match if name == "exact_match" else functools.partial(rouge, name)


# Every built-in metric is a score in [0, 1]: higher is better (spec.METRICS says "maximize").
BUILT_IN: dict[str, Metric] = {name: _builtin(name) for name in GENERATED_METRICS}


def load(name: str) -> Metric:
    """The function behind a metric name; a built-in wins over an entry point of the same name."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    found = installed_metrics()
    if name not in found:
        raise KeyError(
            f"no metric {name!r}; built in: {', '.join(BUILT_IN)}; installed: {describe_installed_metrics()}"
        )
    return found[name].load()


def score(metrics: dict[str, Metric], predictions: list[str], references: list[str]) -> dict[str, float]:
    """Each metric's value on the outputs, as a float."""
    return {name: float(fn(list(predictions), list(references))) for name, fn in metrics.items()}
