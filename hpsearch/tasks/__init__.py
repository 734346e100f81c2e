"""One module per task: data -> tokenized splits, model, metrics. Looked up by the study's `task`."""

from hpsearch.tasks import causal_lm, classification, seq2seq
from hpsearch.tasks.protocol import Task

TASKS: dict[str, Task] = {"sequence-classification": classification, "causal-lm": causal_lm, "seq2seq": seq2seq}

__all__ = ["TASKS", "Task"]
