"""Trials queued before the sampler draws: hand-picked configs and another study's best.

    hpsearch run STUDY --enqueue configs.yaml          # e.g. the BERT paper's grid, run first
    hpsearch run STUDY --warm-start OTHER [--warm-start-top 5] [--warm-start-storage URL]

Configs are read and checked against the study's `search` space (`load_configs`), or taken from
the best completed trials of another study and clipped into this space (`warm_configs`, `clip`),
before anything is written: bad input is a `SpecError` naming the file and the config. Once the
study exists, `enqueue` queues them with Optuna's `enqueue_trial`; workers run queued trials
first, and they count toward `budget.n_trials` like any other trial (no more are queued than the
budget has room for). A param a config leaves out is drawn by the sampler. Queuing skips a config
the study already holds (queued or run), so the same command run twice queues nothing twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from hpsearch.errors import NotFound, missing_study
from hpsearch.orchestration import worker
from hpsearch.results.pareto import pareto_front
from hpsearch.results.record import TrialAttr
from hpsearch.results.storage import checked_url, open_storage, redact, storage_url
from hpsearch.spec import ParamSpec, Spec, SpecError
from hpsearch.spec.load import _Loader

DEFAULT_TOP = 5
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
    if not path.is_file():
        raise SpecError(path, "", "no such file" if not path.exists() else "is not a file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, "", f"cannot read it: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(path, "", f"malformed JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # the study file's loader: 5e-5 is a float
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(path, "", f"malformed YAML: {where}{problem}") from None


def load_configs(path: str | Path, spec: Spec) -> list[dict[str, Any]]:
    """The configs of a YAML or JSON file, each checked against the study's `search` space.

    The file is a list of {param: value} mappings, or a mapping whose one key `configs` holds that
    list. Every key must be a searched param and every value must lie in its distribution; the
    first that does not is a SpecError naming `configs[i].param`. Returns the values as the study
    stores them (an int for a float range becomes a float; a value on a step is snapped exactly).
    """
    path = Path(path)
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
    configs = []
    for i, entry in enumerate(raw):
        where = f"configs[{i}]"
        if not isinstance(entry, dict) or not entry:
            got = "an empty mapping" if entry == {} else repr(entry)
            raise SpecError(path, where, f"must be a mapping of searched param: value, got {got}")
        config = {}
        for name, value in entry.items():
            param = spec.search.get(name)
            if param is None:
                fixed = "is fixed in train, not searched; " if name in spec.train else "is not a searched param; "
                raise SpecError(path, f"{where}.{name}", f"{fixed}searched: {', '.join(spec.search)}")
            try:
                config[name] = check(value, param)
            except ValueError as exc:
                raise SpecError(path, f"{where}.{name}", str(exc)) from None
        configs.append(config)
    return configs


# --------------------------------------------------------------------------------------------
# --warm-start OTHER


def warm_configs(
    other_trials: Iterable[optuna.trial.FrozenTrial], direction: Any, spec: Spec, k: int
) -> list[tuple[int, dict[str, Any]]]:
    """(trial number, config) for the best k completed trials of another study, best first.

    `direction` is the other study's first (`maximize`, `minimize` or a StudyDirection); ties go to the
    lower trial number. Each config keeps the params both spaces share, clipped into this space
    (`clip`); a value with no place here is left out, for the sampler to draw. Configs left empty,
    or identical to a better one after clipping, are dropped.
    """
    maximize = str(getattr(direction, "name", direction)).lower() == "maximize"
    # values[0]: the quality objective, also in a study with a cost (whose caller passes its Pareto front)
    done = [t for t in other_trials if t.state == optuna.trial.TrialState.COMPLETE and t.values]
    ranked = sorted(done, key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))
    out: list[tuple[int, dict[str, Any]]] = []
    for trial in ranked[:k]:
        config = {}
        for name, param in spec.search.items():
            if name in trial.params:
                try:
                    config[name] = clip(trial.params[name], param)
                except ValueError:
                    pass
        if config and all(config != seen for _, seen in out):
            out.append((trial.number, config))
    return out


def warm_start(spec: Spec, name: str, url: str, k: int = DEFAULT_TOP) -> Batch:
    """The best k completed trials of study `name` in the storage at `url`, as a Batch.

    NotFound (exit status 2) when there is no such study or it has no completed trial; SpecError
    when none of its best trials shares a searched param with this study.
    """
    storage = open_storage(url, create=False)
    names = optuna.study.get_all_study_names(storage)
    if name not in names:
        raise missing_study(name, redact(url), names)
    other = optuna.load_study(study_name=name, storage=storage)
    trials = other.get_trials(deepcopy=False)
    completed = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    if not completed:
        states = [t.state.name.lower() for t in trials]
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "none"
        raise NotFound(f"study {name!r} in {redact(url)} has no completed trial to warm-start from (trials: {counts})")
    if len(other.directions) > 1:  # a cost objective: no one ranking, so the Pareto front, best quality first
        trials = pareto_front(other, trials)
        completed = len(trials)
    top = min(k, completed)
    picked = warm_configs(trials, other.directions[0], spec, k)
    if not picked:
        theirs = sorted({p for t in trials for p in t.params})
        raise SpecError(
            spec.source,
            "--warm-start",
            f"the best trials of study {name!r} share no usable param with this study's search "
            f"({name}: {', '.join(theirs)}; here: {', '.join(spec.search)})",
        )
    notes = [f"top {top} of {completed} {'on the Pareto front' if len(other.directions) > 1 else 'completed'}"]
    if len(picked) < top:
        notes.append(f"{top - len(picked)} dropped as identical after clipping")
    return Batch(
        configs=[config for _, config in picked],
        attrs=[{TrialAttr.WARM_START: f"{name}#{number}"} for number, _ in picked],
        source=f"study {name}",
        label="warm start: ",
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# The run's plan, and queuing it


def plan(
    spec: Spec,
    storage_override: str | None = None,
    enqueue: str | Path | None = None,
    warm_start_from: str | None = None,
    top: int | None = None,
    warm_storage: str | None = None,
) -> list[Batch]:
    """What `hpsearch run --enqueue/--warm-start` queues, read and checked; writes nothing.

    The file's configs come first, then the other study's. A grid study refuses both (it runs
    every point of its grid anyway).
    """
    if warm_start_from is None:
        for flag, given in (("--warm-start-top", top), ("--warm-start-storage", warm_storage)):
            if given is not None:
                raise SpecError(spec.source, flag, "is used only with --warm-start STUDY")
    if top is not None and top < 1:
        raise SpecError(spec.source, "--warm-start-top", f"must be >= 1, got {top}")
    for flag, given in (("--enqueue", enqueue), ("--warm-start", warm_start_from)):
        if given is not None and spec.sampler.type == "grid":
            raise SpecError(spec.source, flag, "a grid study already runs every point of its grid")
    batches = []
    if enqueue is not None:
        configs = load_configs(enqueue, spec)
        batches.append(Batch(configs, [{TrialAttr.ENQUEUED_FROM: str(enqueue)}] * len(configs), str(enqueue)))
    if warm_start_from is not None:
        if warm_storage is not None:
            url = checked_url(warm_storage, spec.source, "--warm-start-storage")
        else:
            url = storage_url(spec, storage_override)
        batches.append(warm_start(spec, warm_start_from, url, DEFAULT_TOP if top is None else top))
    return batches


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
