"""The report's data: plain NamedTuples that `collect` builds and the tests assert on, and `ReportData`,
everything one report shows. Nothing here reads a study or draws."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import optuna

from hpsearch.results.confirmation import Confirmation

LEARNING_RATE, BATCH_SIZE, OPTIM = "learning_rate", "per_device_train_batch_size", "optim"
MODEL = "model"  # search.model: the model itself as a choice


class Best(NamedTuple):
    number: int
    value: float
    params: dict[str, Any]


class FrontTrial(NamedTuple):
    """A Pareto-optimal trial of a study with a cost objective."""

    number: int
    value: float
    cost: float
    params: dict[str, Any]


class Summary(NamedTuple):
    study_name: str
    metric: str  # the objective's name: the spec's objective.metric, else "objective"
    direction: str  # "maximize" | "minimize"
    states: dict[str, int]  # trials by state: COMPLETE, PRUNED, FAIL always, others (RUNNING, SKIPPED) when present
    best: Best | None
    compute_seconds: float  # sum over trials of train_seconds (else wall_time_s, else duration)
    axis: str  # the progress axis every count below is in: "samples" (schema version 3 on), else "steps"
    trained: int  # sum over trials of where each trained to (progress_axis.trained)
    saved: int  # sum over pruned trials of their budget left: budget - trained (progress_axis.budget)
    seconds_saved: float  # the same at each pruned trial's own seconds per sample (or step): an estimate
    wall_time_s: float | None  # first start to last completion
    searched: tuple[str, ...]  # every param that some trial sampled, sorted
    cost: str | None = None  # the cost objective's name (objective.cost); then `best` is None
    front: tuple[FrontTrial, ...] = ()  # with a cost: the Pareto-optimal trials, best quality first


class TrialRow(NamedTuple):
    number: int
    state: str
    value: float | None  # objective of a COMPLETE trial
    reached: float | None  # that, or an unfinished trial's last intermediate value
    duration_s: float | None
    pruned_at: int | None  # on the study's axis, as trained
    trained: int | None  # on the study's axis: where it trained to
    budget: int | None  # on the study's axis: its whole budget
    samples_per_second: float | None
    train_seconds: float | None
    params: dict[str, Any]
    error: str | None
    train_eval_gap: float | None = None  # eval_loss - train_loss at the last evaluation
    cost: float | None = None  # a COMPLETE trial's cost, in a study with a cost objective


class Winner(NamedTuple):
    param: str
    best: Any  # the best trial's value
    n_top: int  # completed trials in the best TOP_FRACTION
    top_range: tuple[float, float] | None  # numeric params: range among the top trials
    top_counts: dict[Any, int] | None  # categorical params: choices among the top trials, most frequent first


class History(NamedTuple):
    """The completed trials whose objective optuna.visualization.plot_optimization_history draws."""

    numbers: tuple[int, ...]
    values: tuple[float, ...]  # the (quality) objective


class Points(NamedTuple):
    """Trials with a learning rate and a value: complete at their value, pruned at their last one."""

    numbers: tuple[int, ...]
    learning_rates: tuple[float, ...]
    values: tuple[float, ...]
    optims: tuple[Any, ...]  # None where optim was not searched
    batch_sizes: tuple[Any, ...]
    pruned: tuple[bool, ...]


class Groups(NamedTuple):
    """Per choice of one param: completed trials' objective and finished trials' samples per second."""

    choices: tuple[Any, ...]
    values: tuple[tuple[float, ...], ...]
    throughput: tuple[tuple[float, ...], ...]


class Heatmap(NamedTuple):
    lr_edges: tuple[float, ...]  # log-spaced bin edges
    batch_sizes: tuple[Any, ...]
    best: tuple[tuple[float | None, ...], ...]  # [batch size][lr bin] best objective, None for an empty cell
    counts: tuple[tuple[int, ...], ...]


class Curve(NamedTuple):
    number: int
    state: str
    points: tuple[int, ...]  # on the study's axis (Summary.axis)
    values: tuple[float, ...]
    is_best: bool


class Curves(NamedTuple):
    curves: tuple[Curve, ...]
    total: int  # trials that have a curve
    n_best: int  # curves chosen for being the best (0 when every curve is drawn)
    seed: int | None  # seed of the sample of the rest; None when every curve is drawn


class Gaps(NamedTuple):
    """Completed trials with both losses at their last evaluation: the train/eval gap and the objective."""

    numbers: tuple[int, ...]
    gaps: tuple[float, ...]  # eval_loss - train_loss; above 0, the model fits its training data better
    values: tuple[float, ...]


class Pareto(NamedTuple):
    """Quality against cost for every completed trial of a study with a cost objective."""

    cost: str  # the cost's name, e.g. device_seconds
    numbers: tuple[int, ...]
    values: tuple[float, ...]  # the quality objective
    costs: tuple[float, ...]
    on_front: tuple[bool, ...]
    front: tuple[int, ...]  # the Pareto-optimal trials' numbers, best quality first


class Importance(NamedTuple):
    params: tuple[str, ...]  # most important first
    importances: tuple[float, ...]  # sum to 1


class Lines(NamedTuple):
    """The completed trials drawn as lines of the parallel coordinates: all of them up to a cap, else the
    best ones and a seeded sample of the rest (one line per trial is one plotly trace in Optuna's figure)."""

    numbers: tuple[int, ...]
    total: int  # completed trials
    n_best: int  # lines chosen for being the best (0 when every trial is drawn)
    seed: int | None  # seed of the sample of the rest; None when every trial is drawn


FIGURES = (
    "history",
    "learning_rate",
    "batch_size",
    "optimizer",
    "heatmap",
    "curves",
    "overfitting",
    "importance",
    "parallel",
)


@dataclass(frozen=True)
class ReportData:
    summary: Summary
    winners: tuple[Winner, ...]
    trials: tuple[TrialRow, ...]
    history: History | None = None
    learning_rate: Points | None = None
    batch_size: Groups | None = None
    optimizer: Groups | None = None
    heatmap: Heatmap | None = None
    curves: Curves | None = None
    overfitting: Gaps | None = None
    importance: Importance | None = None
    parallel: Lines | None = None
    pareto: Pareto | None = None  # only in a study with a cost objective; drawn first
    model: Groups | None = None  # only in a study that searches the model (search.model)
    confirmation: Confirmation | None = None  # only in a confirmed study (hpsearch confirm); drawn first
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it has no figure
    # What optuna.visualization draws from (see collect.figure_study); not data to compare.
    study: optuna.Study | None = field(default=None, compare=False, repr=False)

    @property
    def figures(self) -> tuple[str, ...]:
        """The sections drawn as a figure, in the report's order."""
        return tuple(name for name in self.sections if getattr(self, name) is not None)

    @property
    def sections(self) -> tuple[str, ...]:
        """The figure sections of the report: FIGURES, after the Pareto front in a study with a cost,
        with the objective and throughput per model after the optimizer's in one that searches the model."""
        figures = ("pareto", *FIGURES) if self.summary.cost is not None else FIGURES
        if self.confirmation is not None:
            figures = ("confirmation", *figures)
        if MODEL not in self.summary.searched:
            return figures
        at = figures.index("optimizer") + 1
        return (*figures[:at], "model", *figures[at:])


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def order(values) -> list:
    """Distinct values sorted: numbers first, then anything else by its text (a categorical may mix types)."""
    return sorted(set(values), key=lambda v: (0, v, "") if finite(v) else (1, 0, str(v)))
