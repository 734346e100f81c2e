"""One module per task: data -> tokenized splits, model, metrics. Looked up by the study's `task`."""

from hpsearch.tasks import causal_lm, classification, seq2seq

TASKS = {"sequence-classification": classification, "causal-lm": causal_lm, "seq2seq": seq2seq}

__all__ = ["TASKS"]
