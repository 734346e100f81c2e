"""Sampler name -> Optuna sampler (an explicit table, no registry); options are checked in spec."""

from __future__ import annotations

import optuna

from hpsearch import space
from hpsearch.spec import Spec


def build_sampler(spec: Spec) -> optuna.samplers.BaseSampler:
    kind, options = spec.sampler.type, spec.sampler.options
    seed = options.get("seed", 0)
    if kind == "grid":
        return optuna.samplers.GridSampler(space.grid(spec.search, spec.source), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=options.get("n_startup_trials", 10),
        multivariate=options.get("multivariate", True),
    )
