"""Pruner name -> Optuna pruner (an explicit table, no registry); options are checked in spec.

Trials report the objective at every evaluation keyed by training samples seen (the progress axis), so
every `*_steps` and `*_resource` option below is counted in samples. Every pruner but none is wrapped
in `NoiseAwarePruner`, which weighs its proposals against the evaluation's uncertainty.
"""

from __future__ import annotations

import optuna

from hpsearch.search.noise import NoiseAwarePruner
from hpsearch.spec import Spec, SpecError

RESOURCES = ("min_resource", "max_resource")
_FACTORIES = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


def build_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    return pruner_of(spec.pruner, spec.source)


def pruner_of(section, source) -> optuna.pruners.BasePruner:
    """The pruner a study file's `pruner` section describes."""
    kind, options = section.type, dict(section.options)
    # A resource given as a fraction of a trial's samples is set once the first trial's budget is known.
    fractions = {k: options.pop(k) for k in RESOURCES if isinstance(options.get(k), float)}
    placeholders = {k: 1 for k in fractions}  # any valid value: NoiseAwarePruner.observe_budget replaces it
    try:
        base = _FACTORIES[kind](**options, **placeholders)
    except ValueError as exc:  # Optuna's own range checks, e.g. percentile outside 0-100
        raise SpecError(source, "pruner", str(exc).splitlines()[0]) from None
    return base if kind == "none" else NoiseAwarePruner(base, section.tolerance_se, fractions)
