"""Pruner name -> Optuna pruner (an explicit table, no registry); options are checked in spec.

Trials report the objective at every evaluation keyed by the training step, so every `*_steps` and
`*_resource` option below is counted in optimizer steps.
"""

from __future__ import annotations

import optuna

from hpsearch.spec import Spec, SpecError

_FACTORIES = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


def build_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    kind, options = spec.pruner.type, spec.pruner.options
    try:
        return _FACTORIES[kind](**options)
    except ValueError as exc:  # Optuna's own range checks, e.g. percentile outside 0-100
        raise SpecError(spec.source, "pruner", str(exc).splitlines()[0]) from None
