"""A pruner that does not act on noise: Optuna's pruner proposes, and the trial is pruned only when it is
worse than the pruner's bar by more than `tolerance_se` standard errors of its evaluation. Every
decision carries its evidence (value, bar, uncertainty), which the trial records."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.pruners import _percentile, _successive_halving
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


class NoiseAwarePruner(optuna.pruners.BasePruner):
    """Wraps one of Optuna's median, percentile, successive-halving or hyperband pruners.

    The uncertainty of an evaluation is its standard error, handed over before `should_prune` by
    `observe` (the trial's reporter does it from the evaluation's `<metric>_se`; `hpsearch simulate`
    from the stored curve). Without one (a metric whose error hpsearch cannot estimate), the wrapped
    pruner's decision stands. `tolerance_se=0` is the wrapped pruner, with its evidence recorded.
    """

    def __init__(
        self, base: optuna.pruners.BasePruner, tolerance_se: float = 0.0, fractions: dict[str, float] | None = None
    ) -> None:
        self.base = base
        self.tolerance_se = tolerance_se
        self.fractions = dict(fractions or {})
        """Resources given as fractions of a trial's training samples (min_resource, max_resource): set on
        the wrapped pruner, in samples, from the budget of the study's first trial to train (`observe_budget`)."""
        self._uncertainty: dict[tuple[int, int], tuple[float | None, int | None]] = {}
        self.decisions: dict[int, dict[str, Any]] = {}
        """trial number -> the evidence of the latest time the wrapped pruner proposed to prune it."""
        self.noted_unprunable = False  # a trial it could not prune was pointed out (once a process)

    def observe(self, number: int, at: int, standard_error: float | None, rows: int | None = None) -> None:
        """The standard error (and the eval rows) of trial `number`'s evaluation reported at `at`."""
        se = None if standard_error is None or not math.isfinite(standard_error) else float(standard_error)
        self._uncertainty[(number, at)] = (se, rows)

    def judge(
        self, trial: optuna.Trial, at: int, standard_error: float | None, rows: int | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """`trial.should_prune()` at point `at` with its evaluation's error handed over first: whether to prune,
        and the evidence when the wrapped pruner proposed to (None when it did not)."""
        self.observe(trial.number, at, standard_error, rows)
        prune = trial.should_prune()
        return prune, self.decisions.pop(trial.number, None)

    def observe_budget(self, samples: int) -> None:
        """The study's training budget in samples: resolves resources given as fractions, once (before the
        wrapped pruner's first decision; Optuna's hyperband sizes its brackets at its first call). The run
        hands over the budget stored in the study (`callbacks.study_budget`), `hpsearch simulate` the same."""
        for name, fraction in self.fractions.items():
            setattr(self.base, f"_{name}", max(1, round(fraction * samples)))
        self.fractions = {}

    def first_judged(self) -> tuple[int, str] | None:
        """The first point on the progress axis at which the wrapped pruner may prune a trial, in samples, and
        the option that sets it (its first rung, its warm-up); None while a resource is unresolved."""
        base = self.base
        if self.fractions:
            return None
        if isinstance(base, optuna.pruners.SuccessiveHalvingPruner | optuna.pruners.HyperbandPruner):
            if not isinstance(base._min_resource, int):  # `auto`: the first trial to end sets it
                return None
            rate = getattr(base, "_min_early_stopping_rate", 0)  # hyperband's first bracket rungs from min_resource
            return base._min_resource * base._reduction_factor**rate, "min_resource"
        if isinstance(base, optuna.pruners.PercentilePruner):
            return base._n_warmup_steps, "n_warmup_steps"
        return None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if self.fractions:
            return False  # no budget seen yet: nothing to rung against
        at = trial.last_step
        se, rows = self._uncertainty.pop((trial.number, at), (None, None))  # popped however it ends
        if not self.base.prune(study, trial):
            return False
        latest = trial.intermediate_values.get(at, math.nan)
        rungs = isinstance(self.base, optuna.pruners.SuccessiveHalvingPruner | optuna.pruners.HyperbandPruner)
        # A NaN prunes at once in the halving pruners, before any rung is written: there is no bar.
        value, bar = (latest, None) if rungs and math.isnan(latest) else bar_of(self.base, study, trial)
        margin = None if se is None else self.tolerance_se * se
        # How much worse than the bar, in the study's direction (the wrapped pruner proposed: it is worse).
        worse = None if bar is None else (bar - value if study.direction == StudyDirection.MAXIMIZE else value - bar)
        # Without a bar (a NaN value, a bootstrap rung) or an error estimate there is nothing to weigh: the
        # pruner's call stands.
        prune = margin is None or worse is None or worse > margin
        self.decisions[trial.number] = {
            "samples": at,
            "value": _plain(value),
            "bar": _plain(bar),
            "uncertainty": _plain(se),
            "eval_rows": rows,
            "tolerance_se": self.tolerance_se,
            "pruned": prune,
        }
        return prune


def _plain(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def bar_of(pruner: optuna.pruners.BasePruner, study: optuna.Study, trial: FrozenTrial) -> tuple[float, float | None]:
    """The value the wrapped pruner judged the trial by and the bar it had to reach, read the way Optuna
    5's pruners compute them (tests/test_noise.py checks each against the pruner's own decision)."""
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        bracket = pruner._get_bracket_id(study, trial)
        return bar_of(pruner._pruners[bracket], pruner._create_bracket_study(study, bracket), trial)
    if isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner):
        return _rung_bar(pruner, study, trial)
    if isinstance(pruner, optuna.pruners.PercentilePruner):  # the median pruner is one
        value = _percentile._get_best_intermediate_result_over_steps(trial, study.direction)
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        bar = _percentile._get_percentile_intermediate_result_over_trials(
            completed, study.direction, trial.last_step, pruner._percentile, pruner._n_min_trials
        )
        return float(value), None if math.isnan(bar) else float(bar)
    raise TypeError(f"no bar for {type(pruner).__name__}")


def _rung_bar(pruner, study: optuna.Study, trial: FrozenTrial) -> tuple[float, float | None]:
    """Successive halving: the trial's value at the rung it failed, and the worst value promoted there."""
    fresh = study._storage.get_trial(trial._trial_id)  # prune() just wrote the rung's value
    rung = _successive_halving._get_current_rung(fresh) - 1
    key = _successive_halving._completed_rung_key(rung)
    value = float(fresh.system_attrs[key])
    others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
    competing = sorted(_successive_halving._get_competing_values(others, value, key))
    if len(competing) <= pruner._bootstrap_count:
        return value, None  # pruned because too few trials reached the rung, not by a bar
    if study.direction == StudyDirection.MAXIMIZE:
        competing.reverse()
    promoted = max(len(competing) // pruner._reduction_factor - 1, 0)
    return value, float(np.asarray(competing, dtype=float)[promoted])
