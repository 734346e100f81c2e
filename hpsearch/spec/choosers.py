"""The sampler and the pruner: unions keyed by `type`, so each type's options are checked by the
schema. `.options` holds the options the study gave (Optuna's defaults fill the rest)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from hpsearch.errors import shown
from hpsearch.spec.fields import NonNegative, Positive, Section, Seed, fail, rule


class _Typed(Section):
    type: str

    @property
    def options(self) -> dict[str, Any]:
        """The options given in the study file or defaulted by hpsearch (one left unset takes Optuna's default)."""
        return {k: v for k in type(self).model_fields if k != "type" and (v := getattr(self, k)) is not None}


class GridSampler(_Typed):
    """Every point of a discrete space once (budget.n_trials defaults to the grid size)."""

    type: Literal["grid"]
    seed: Seed | None = None
    """Seed of the order the grid is visited in."""


class RandomSampler(_Typed):
    """Independent random samples."""

    type: Literal["random"]
    seed: Seed | None = None
    """Seed of the samples."""


class TpeSampler(_Typed):
    """Optuna's default, tree-structured Parzen estimator."""

    type: Literal["tpe"] = "tpe"
    seed: Seed | None = None
    """Seed of the samples."""
    n_startup_trials: NonNegative = 5
    """Random trials before TPE models the space. Optuna's own default is 10; 5 found the best of the
    recorded grids sooner over 100 seeds (docs/guide/pruning.md, BENCHMARKS.md)."""
    multivariate: bool = True
    """Model the parameters jointly (Optuna's own default models each alone)."""


class Nsga2Sampler(_Typed):
    """A genetic algorithm for studies with objective.cost (a Pareto front)."""

    type: Literal["nsga2"]
    seed: Seed | None = None
    """Seed of the samples."""
    population_size: Annotated[int, rule(lambda v: v >= 2, "must be >= 2, got {v}")] | None = None
    """Trials per generation (Optuna: 50)."""


class GpSampler(_Typed):
    """Gaussian-process Bayesian optimization (Optuna's GPSampler): few trials, each expensive."""

    type: Literal["gp"]
    seed: Seed | None = None
    """Seed of the samples."""
    n_startup_trials: NonNegative = 2
    """Random trials before the Gaussian process models the space. Optuna's own default is 10, the slowest
    to the best of the recorded grids over 40 seeds; 2 the fastest (docs/guide/pruning.md, BENCHMARKS.md)."""


class QmcSampler(_Typed):
    """Quasi-Monte Carlo: a low-discrepancy sequence that covers the space more evenly than random."""

    type: Literal["qmc"]
    seed: Seed | None = None
    """Seed of the scrambling (and of categorical choices)."""
    qmc_type: Literal["sobol", "halton"] | None = None
    """The sequence (Optuna: sobol)."""
    scramble: bool | None = None
    """Scramble the sequence (Optuna: false)."""


Sampler = Annotated[
    GridSampler | RandomSampler | TpeSampler | Nsga2Sampler | GpSampler | QmcSampler, Field(discriminator="type")
]


# The tolerance of new studies' pruners (replayed on recorded curves: docs/guide/pruning.md). 2, not 1:
# as fast to the grids' best, and the best region is lost less often, for a little more training.
DEFAULT_TOLERANCE_SE = 2.0
Tolerance = Annotated[float, rule(lambda v: v >= 0, "must be >= 0, got {v}")]


class _Judging(_Typed):
    """A pruner that judges trials against a bar: every one but none."""

    tolerance_se: Tolerance = DEFAULT_TOLERANCE_SE
    """Prune only a trial worse than the pruner's bar by more than this many standard errors of its
    evaluation (accuracy: from the eval rows; loss: from the per-example losses); 0: as Optuna's pruner
    decides. A metric without an error estimate is pruned as Optuna decides."""

    @property
    def options(self) -> dict[str, Any]:
        """Optuna's options (the tolerance is hpsearch's own)."""
        return {k: v for k, v in super().options.items() if k != "tolerance_se"}


class NoPruner(_Typed):
    """Every trial trains to its end (the default with objective.cost)."""

    type: Literal["none"]


class MedianPruner(_Judging):
    """Prune a trial whose best value so far is below the median of completed trials at the same point.
    Steps and resources are counted in training samples seen (the progress axis)."""

    type: Literal["median"]
    n_startup_trials: NonNegative | None = None
    """Trials that are never pruned before pruning starts (Optuna: 5)."""
    n_warmup_steps: NonNegative | None = None
    """Training samples of each trial before it can be pruned (Optuna: 0)."""
    interval_steps: Positive | None = None
    """Samples between pruning checks (Optuna: 1: every evaluation)."""
    n_min_trials: Positive | None = None
    """Trials reported at a point before that point can prune (Optuna: 1)."""


class PercentilePruner(MedianPruner):
    """Prune a trial below the given percentile of completed trials at the same point."""

    type: Literal["percentile"]
    percentile: Annotated[float, rule(lambda v: 0 <= v <= 100, "must be in [0, 100], got {v}")]
    """Required: 0-100 (50 is the median pruner)."""


def _resource(auto: bool) -> BeforeValidator:
    """Samples (an integer), a fraction of a trial's training samples (a float in (0, 1]), and, where
    Optuna can read it from the first completed trial, auto."""
    allowed = "samples (an integer >= 1) or a fraction of a trial's samples in (0, 1]" + (", or 'auto'" if auto else "")

    def check(value: Any) -> Any:
        if (auto and value == "auto") or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        if isinstance(value, float) and 0 < value <= 1:
            return value
        raise fail(f"{shown(value)} is not allowed; {allowed}")

    return BeforeValidator(check)


Resource = Annotated[int | float | Literal["auto"], _resource(auto=True)]
Budgeted = Annotated[int | float, _resource(auto=False)]  # hyperband's first rung: Optuna has no auto for it
# A new study's hyperband: its first rung at a sixteenth of a trial's training (the first evaluation at
# evaluation.every's default), brackets up to the whole of it (docs/guide/pruning.md: how it was chosen).
DEFAULT_MIN_RESOURCE, DEFAULT_MAX_RESOURCE = 0.0625, 1.0
Factor = Annotated[int, rule(lambda v: v >= 2, "must be >= 2, got {v}")]


class SuccessiveHalvingPruner(_Judging):
    """Asynchronous successive halving: keep the best 1/reduction_factor at each rung."""

    type: Literal["successive-halving"]
    min_resource: Resource | None = None
    """Training samples before the first rung (a float up to 1: a fraction of a trial's samples), or auto
    (Optuna: auto)."""
    reduction_factor: Factor | None = None
    """Rung to rung, 1/reduction_factor of the trials go on (Optuna: 4)."""
    min_early_stopping_rate: NonNegative | None = None
    """Rungs skipped at the start (Optuna: 0)."""
    bootstrap_count: NonNegative | None = None
    """Trials a rung needs before it prunes (Optuna: 0)."""


class HyperbandPruner(_Judging):
    """Several successive-halving brackets of different aggressiveness (the default without objective.cost)."""

    type: Literal["hyperband"]
    min_resource: Budgeted = DEFAULT_MIN_RESOURCE
    """Training samples before a bracket's first rung; a float up to 1 is a fraction of a trial's samples."""
    max_resource: Resource = DEFAULT_MAX_RESOURCE
    """A trial's training samples (1.0: all of them), or auto: read from the first completed trial."""
    reduction_factor: Factor = 3
    """Rung to rung, 1/reduction_factor of the trials go on."""
    bootstrap_count: NonNegative | None = None
    """Trials a rung needs before it prunes (Optuna: 0)."""

    @model_validator(mode="after")
    def _min_below_max(self) -> HyperbandPruner:
        low, high = self.min_resource, self.max_resource
        if high != "auto" and type(low) is type(high) and low > high:  # both samples, or both fractions
            raise fail(f"{shown(low)} is not allowed; at most max_resource ({shown(high)})", key="min_resource")
        return self


Pruner = Annotated[
    NoPruner | MedianPruner | PercentilePruner | SuccessiveHalvingPruner | HyperbandPruner,
    Field(discriminator="type"),
]
SAMPLER_TYPES = {c.model_fields["type"].annotation.__args__[0]: c for c in Sampler.__origin__.__args__}
PRUNER_TYPES = {c.model_fields["type"].annotation.__args__[0]: c for c in Pruner.__origin__.__args__}
# Each sampler and pruner with the options a study file may give it (the old tables' shape).
SAMPLERS = {name: [k for k in c.model_fields if k != "type"] for name, c in SAMPLER_TYPES.items()}
PRUNERS = {name: [k for k in c.model_fields if k != "type"] for name, c in PRUNER_TYPES.items()}
