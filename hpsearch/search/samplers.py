"""Sampler name -> Optuna sampler (an explicit table, no registry); options are checked in spec."""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from hpsearch.search import space
from hpsearch.spec import Spec


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, tolerant of enqueued trials.

    A trial re-run after Ctrl-C is enqueued with fixed params and so carries no `grid_id`; Optuna's
    `after_trial` looks one up when a single grid point is left and raises KeyError. Such a trial
    only stops the study if the grid is exhausted.
    """

    def after_trial(self, study, trial, state, values) -> None:
        if "grid_id" in study._storage.get_trial_system_attrs(trial._trial_id):
            super().after_trial(study, trial, state, values)
        elif self.is_exhausted(study):
            study.stop()


def build_sampler(spec: Spec, n_existing_trials: int = 0, salt: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler. On resume, a random or TPE sampler's seed is mixed with the number of
    trials already run, so the resumed study does not replay the configs its first run drew, and
    stays reproducible: the same study resumed at the same point draws the same configs. A worker
    among several mixes in its `salt` too, so workers do not draw the same configs in step."""
    kind, options = spec.sampler.type, spec.sampler.options
    seed = options.get("seed", 0)
    if kind == "grid":  # its seed orders the grid, and stored grid ids index that order: keep it
        return GridSampler(space.grid(spec.search), seed=seed)
    if kind == "qmc":  # the study stores the sequence's position: resumed and parallel runs go on along it
        given = {k: options[k] for k in ("qmc_type", "scramble") if k in options}  # unset: Optuna's defaults
        with warnings.catch_warnings():  # Optuna calls it experimental; hpsearch documents it (study-file.md)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, warn_asynchronous_seeding=False, **given)
    if n_existing_trials or salt:
        mixed = [seed, n_existing_trials, salt] if salt else [seed, n_existing_trials]
        seed = int(np.random.SeedSequence(mixed).generate_state(1)[0])
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=options["n_startup_trials"])
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":  # a genetic algorithm: the usual choice for a Pareto front (objective.cost)
        given = {"population_size": options["population_size"]} if "population_size" in options else {}
        return optuna.samplers.NSGAIISampler(seed=seed, **given)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=options["n_startup_trials"], multivariate=options["multivariate"]
    )
