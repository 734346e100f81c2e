"""Trials queued before the sampler draws, from a file of hand-picked configs:

    hpsearch run STUDY --enqueue configs.yaml          # e.g. the BERT paper's grid, run first

A config's values are checked against the study's `search` space (`check`), or, from another study
(hpsearch.orchestration.warm_start), moved into it (`clip`), before anything is written: bad input is
a `SpecError` naming the file and the config. Once the study exists, `enqueue` queues them with
Optuna's `enqueue_trial`; workers run queued trials first, and they count toward `budget.n_trials`
like any other trial (no more are queued than the budget has room for). A param a config leaves out
is drawn by the sampler. Queuing skips a config the study already holds (queued or run), so the same
command run twice queues nothing twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hpsearch.orchestration import worker
from hpsearch.spec import ParamSpec, Spec, SpecError
from hpsearch.spec.load import read_document
from hpsearch.spec.messages import raise_all

RUNNING, WAITING = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING
SHAPE = "must be a list of {param: value} mappings, or a mapping with configs: [...]"


@dataclass(frozen=True)
class Batch:
    """Configs to queue, each with the user attributes that say where it came from."""

    configs: list[dict[str, Any]]
    attrs: list[dict[str, Any]]
    source: str
    """What the closing line names: the file, or `study OTHER`."""
    label: str = ""
    """Prefix of that line (`warm start: `)."""
    notes: tuple[str, ...] = ()
    """What the line adds in parentheses (`top 5 of 12 completed`)."""


# --------------------------------------------------------------------------------------------
# Values against one searched param


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choice(value: Any, param: ParamSpec) -> Any:
    """The choice equal to value (16.0 finds 16, True never finds 1), or ValueError."""
    for choice in param.choices:
        same_kind = isinstance(choice, bool) == isinstance(value, bool) and (choice is None) == (value is None)
        if same_kind and choice == value:
            return choice
    raise ValueError(f"{value!r} is not one of the searched choices: {', '.join(map(repr, param.choices))}")


def _on_step(value: float, param: ParamSpec) -> float | int:
    """The grid point nearest value: low + i * step (floats rounded as `ParamSpec.values` does)."""
    snapped = param.low + round((value - param.low) / param.step) * param.step
    return snapped if param.kind == "int" else round(snapped, 12)


def check(value: Any, param: ParamSpec) -> Any:
    """The value as the study stores it, if it lies in the param's distribution; else ValueError
    saying why: outside [low, high], off the step, not an int for an int param, not a choice."""
    if param.kind == "categorical":
        return _choice(value, param)
    if not _is_number(value) or (param.kind == "int" and not isinstance(value, int)):
        raise ValueError(f"must be {'an int' if param.kind == 'int' else 'a number'}, got {value!r}")
    if not param.low <= value <= param.high:
        raise ValueError(f"{value!r} is outside the searched range [{param.low!r}, {param.high!r}]")
    if param.step is not None:
        steps = (value - param.low) / param.step
        if abs(steps - round(steps)) > 1e-8:
            below = param.low + math.floor(steps) * param.step
            nearest = [_on_step(v, param) for v in (below, below + param.step)]
            raise ValueError(
                f"{value!r} is not on the searched step {param.step!r} from {param.low!r}; "
                f"nearest: {nearest[0]!r}, {nearest[1]!r}"
            )
        value = _on_step(value, param)
    return float(value) if param.kind == "float" else value


def clip(value: Any, param: ParamSpec) -> Any:
    """Another study's value moved into this param: a number clipped into [low, high] (log ranges
    alike), rounded for an int param, snapped to the nearest step when there is one; a categorical
    value kept only if it is one of the choices. ValueError when the value has no place here
    (a choice that is not offered, a string for a range)."""
    if param.kind == "categorical":
        return _choice(value, param)
    if not _is_number(value) or math.isnan(value):
        raise ValueError(f"{value!r} is not a number")
    value = min(max(value, param.low), param.high)
    if param.kind == "int":
        value = int(round(value))
    if param.step is not None:
        value = _on_step(value, param)  # the ends are on the step, so a snapped value stays inside
    return float(value) if param.kind == "float" else value


# --------------------------------------------------------------------------------------------
# --enqueue FILE


def _read(path: Path) -> Any:
    return read_document(path, "a configs file is UTF-8 YAML or JSON", "to be a list of configs")


def load_configs(path: str | Path, spec: Spec) -> list[dict[str, Any]]:
    """The configs of a YAML or JSON file, each checked against the study's `search` space.

    The file is a list of {param: value} mappings, or a mapping whose one key `configs` holds that
    list. Every key must be a searched param and every value must lie in its distribution; the
    ones that do not are SpecErrors naming `configs[i].param`, all at once. Returns the values as the study
    stores them (an int for a float range becomes a float; a value on a step is snapped exactly).
    """
    path = Path(path)
    if not path.is_file():  # the flag is named: the file's own errors name the file
        raise SpecError(spec.source, "--enqueue", f"{path}: {'no such file' if not path.exists() else 'is not a file'}")
    raw = _read(path)
    if isinstance(raw, dict):
        unknown = sorted(map(str, set(raw) - {"configs"}))
        if unknown:
            raise SpecError(path, unknown[0], f"unknown key; the file {SHAPE}")
        if "configs" in raw and not isinstance(raw["configs"], list):
            raise SpecError(path, "configs", f"must be a list of {{param: value}} mappings, got {raw['configs']!r}")
        raw = raw.get("configs")
    if not isinstance(raw, list):
        raise SpecError(path, "", f"{'is empty; it ' if raw is None else ''}{SHAPE}")
    if not raw:
        raise SpecError(path, "configs", "is empty; give at least one config")
    configs, errors = [], []
    for i, entry in enumerate(raw):
        where = f"configs[{i}]"
        if not isinstance(entry, dict) or not entry:
            got = "an empty mapping" if entry == {} else repr(entry)
            errors.append(SpecError(path, where, f"must be a mapping of searched param: value, got {got}"))
            continue
        config = {}
        for name, value in entry.items():
            param = spec.search.get(name)
            if param is None:
                fixed = "is fixed in train, not searched; " if name in spec.train else "is not a searched param; "
                errors.append(SpecError(path, f"{where}.{name}", f"{fixed}searched: {', '.join(spec.search)}"))
                continue
            try:
                config[name] = check(value, param)
            except ValueError as exc:
                errors.append(SpecError(path, f"{where}.{name}", str(exc)))
        configs.append(config)
    raise_all(errors)  # every bad config of the file at once, one line each
    return configs


# --------------------------------------------------------------------------------------------
# Queuing


def _holds(study: optuna.Study, params: dict[str, Any]) -> bool:
    """Whether a trial of the study was queued with these params, or ran with exactly these."""
    return any(t.system_attrs.get("fixed_params", t.params) == params for t in study.get_trials(deepcopy=False))


def room(study: optuna.Study, n_trials: int | None) -> int | None:
    """Trials the budget still has room for: n_trials less those counted, running or queued."""
    if n_trials is None:
        return None
    pending = sum(t.state in (RUNNING, WAITING) for t in study.get_trials(deepcopy=False))
    return max(0, n_trials - worker.counted(study) - pending)


def enqueue(
    study: optuna.Study, batches: Iterable[Batch], say: Callable[[str], None] = print, n_trials: int | None = None
) -> int:
    """Queue each batch's configs in the study and say one line per batch; returns how many were queued.

    A config the study already holds (queued or run) is skipped. With `n_trials` (the budget), no
    more are queued than it has room for, first come first queued: queued trials always run, so a
    longer queue would overrun the budget when several workers pop it. The same command run with a
    larger budget queues the rest.
    """
    space_left = room(study, n_trials)
    total = 0
    for batch in batches:
        added = held = beyond = 0
        for params, attrs in zip(batch.configs, batch.attrs, strict=True):
            if space_left is not None and space_left <= 0:
                if _holds(study, params):
                    held += 1
                else:
                    beyond += 1
                continue
            before = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
            if len(study.get_trials(deepcopy=False)) > before:
                added += 1
                space_left = None if space_left is None else space_left - 1
            else:
                held += 1
        notes = list(batch.notes)
        if held:
            notes.append(f"{held} already queued or run")
        if beyond:
            notes.append(f"{beyond} left out, beyond budget.n_trials={n_trials}")
        line = f"{batch.label}enqueued {added} config{'' if added == 1 else 's'} from {batch.source}"
        say(line + (f" ({'; '.join(notes)})" if notes else ""))
        total += added
    return total
