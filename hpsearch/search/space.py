"""The study's `search` section -> Optuna distributions, per-trial suggestions and the grid."""

from __future__ import annotations

import math
from typing import Any

import optuna

from hpsearch.spec import ParamSpec


def distribution(param: ParamSpec) -> optuna.distributions.BaseDistribution:
    if param.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(param.choices)
    if param.kind == "int":
        return optuna.distributions.IntDistribution(param.low, param.high, log=param.log, step=param.step or 1)
    return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def suggest(trial: optuna.Trial, search: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask the trial for every searched parameter; the names are TrainingArguments fields."""
    params = {}
    for name, p in search.items():
        if p.kind == "categorical":
            params[name] = trial.suggest_categorical(name, p.choices)
        elif p.kind == "int":
            params[name] = trial.suggest_int(name, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            params[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    return params


def grid(search: dict[str, ParamSpec]) -> dict[str, list[Any]]:
    """The grid a GridSampler walks (spec has checked that every parameter is discrete)."""
    return {name: p.values for name, p in search.items()}


def grid_size(search: dict[str, ParamSpec]) -> int:
    return math.prod(len(values) for values in grid(search).values())
