"""What every trial of a study shares, built once per worker (orchestration/worker.py) and read by each
trial (training/trial.py) and its training passes (training/attempt.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.spec import Spec
from hpsearch.tasks import Task
from hpsearch.tasks.task_data import TaskData
from hpsearch.training.distributed import Ranks

if TYPE_CHECKING:  # the worker's progress lines; the trial only calls them
    from hpsearch.orchestration.progress import Progress


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares; built once per worker."""

    spec: Spec
    task: Task
    data: TaskData
    tokenizer: Any
    model_path: str
    best_model_dir: Path | None
    progress: Progress
    raw: Any = None  # the data's RawData: augmentation re-encodes its train split per trial
    dropout_attributes: tuple[str, ...] = ()
    """The dropout probabilities of the model's config, set when the study sets dropout."""
    choices: dict[str, TrialContext] = field(default_factory=dict)
    """search.model: each choice's own context (its model, tokenizer and tokenized data)."""
    ranks: Ranks | None = None
    """A multi-device trial's rank (distributed.py); None: the trial trains in this process alone."""

    def for_params(self, params: dict[str, Any]) -> TrialContext:
        """The context of the model a trial trains: its searched choice's, else this one."""
        return self.choices[params["model"]] if "model" in params else self
