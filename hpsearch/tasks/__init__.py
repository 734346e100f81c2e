"""One module per task: data -> tokenized splits, model, metrics. Looked up by the study's `task`."""

from hpsearch.tasks import causal_lm, classification

TASKS = {"sequence-classification": classification, "causal-lm": causal_lm}

__all__ = ["TASKS"]
