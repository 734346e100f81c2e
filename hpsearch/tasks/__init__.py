"""One module per task: data -> tokenized splits, model, metrics. Looked up by the study's `task`."""

from hpsearch.tasks import classification

TASKS = {"sequence-classification": classification}

__all__ = ["TASKS"]
