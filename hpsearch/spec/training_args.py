"""Study-file values checked against transformers' `TrainingArguments`: its fields, the types each
admits, the values of those that take an Enum's (`optim`, `lr_scheduler_type`, `save_strategy`, ...)
and their help; read by validate and by the JSON Schema of `train` and `search`."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
import os
import types
import typing
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from hpsearch.errors import SpecError, shown
from hpsearch.spec.paths import cache_dir

# Keys hpsearch sets itself for every trial; a study file may not set them.
RESERVED_TRAINING_ARGUMENTS = {"output_dir": "hpsearch gives every trial its own output folder"}
# Names users reach for that transformers 5 no longer has.
RENAMED_TRAINING_ARGUMENTS = {
    "warmup_ratio": "use warmup_steps with a float in [0, 1) (a fraction of the training steps)",
    "evaluation_strategy": "use eval_strategy",
    "lr": "use learning_rate",
    "batch_size": "use per_device_train_batch_size",
}
# Old names transformers 5.25 still takes for renamed fields (it warns on them; transformers 6 drops them). A
# study may write either name; given both, transformers takes the new one and drops the old without a word.
OLD_NAMES = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}


# Values of an Enum field that no trial can run: hpsearch schedules evaluations itself (every trial's eval_strategy is
# "no"), and these schedulers step on Trainer's evaluations. Validate refuses them; the JSON Schema leaves them out.
NEED_EVAL_STRATEGY = {"lr_scheduler_type": ("reduce_lr_on_plateau", "greedy")}


# report_to as Trainer takes it, of what TrainingArguments' annotation admits (None | str | list[str]): the name of an
# integration transformers has a callback for, or one of these words alone (the string, or a list of that one), which
# TrainingArguments reads as no integration or every one installed. It hands null, or a word of these in a list with
# other names, on to Trainer as an integration it has no callback for: a ValueError in every trial. Validate
# (`report_to_problem`) and the JSON Schema (training_schema) refuse what Trainer would.
REPORT_TO_ALONE = ("none", "all")
# Integrations transformers has a callback for that no trial can report to, and why. transformers' FlyteCallback reads
# the checkpoint of the Flyte task it runs in (flytekit.current_context().checkpoint), and hpsearch's trials, run from
# its command line, run in none: outside one flytekit's context has no checkpoint, and Trainer raises
# NotImplementedError building the callback in every trial (ImportError without flytekit). transformers leaves flyte
# out of `all` (get_available_reporting_integrations) for the same reason. Validate refuses them saying why; the JSON
# Schema leaves them out.
NO_TRIAL_INTEGRATIONS = {
    "flyte": "reports only from inside a Flyte task (transformers' FlyteCallback reads the task's checkpoint), "
    "and a trial runs in none"
}


# What transformers warns of an old name (a FutureWarning on every TrainingArguments built): hpsearch says it
# once instead (`old_names_note`).
OLD_NAME_WARNING = rf"`({'|'.join(OLD_NAMES)})` is deprecated"


def named_twice(names: Iterable[str]) -> list[tuple[str, str]]:
    """(old name, new name) of each argument that `names` give under both."""
    given = set(names)
    return [(old, new) for old, new in OLD_NAMES.items() if old in given and new in given]


def twice_message(new: str, where_new: str) -> str:
    """What an old name is told when its new name `new` is set too, at `where_new`."""
    return (
        f"is the old name of {new}, which is set too ({where_new}); transformers would drop this one: set one of them"
    )


# Bump when what the table holds, or how it is read off TrainingArguments, changes: the cached one is then read
# off again.
TABLE_FORMAT = 3  # 2: the types of a list's items (`items`); 3: the reporting integrations (`integrations`)
_PLAIN = {t.__name__: t for t in (bool, int, float, str, list, dict, object, type(None))}


def _type_names(members: Iterable[Any]) -> list[str]:
    """The names of the plain types among an annotation's members, once each (an Enum's values are str)."""
    names = [(str if issubclass(m, enum.Enum) else m).__name__ for m in members if isinstance(m, type)]
    return list(dict.fromkeys(names))


def _read_off_transformers() -> dict[str, Any]:
    """What validate and the JSON Schema need of the installed TrainingArguments, as JSON: each field it takes
    with the names of the plain types its annotation admits (an Enum's field takes its values' names, str),
    those a list's items may be (list[str]: str), the values of each field annotated with an Enum (or its value
    as a string, or None), each field's help, and the integrations `report_to` may name (those Trainer has a
    callback for)."""
    from transformers import TrainingArguments
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    hints = typing.get_type_hints(TrainingArguments)
    table: dict[str, Any] = {"fields": {}, "items": {}, "choices": {}, "help": {}, "integrations": []}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init:
            continue
        hint = hints[f.name]
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        args = typing.get_args(hint) if union else (hint,)
        members = [typing.get_origin(m) or m for m in args]  # list[str]: list
        enums = [m for m in members if isinstance(m, type) and issubclass(m, enum.Enum)]
        table["fields"][f.name] = _type_names(members)
        items = [item for m in args if typing.get_origin(m) is list for item in typing.get_args(m)]
        if items:
            table["items"][f.name] = _type_names(items)
        if enums and all(m in (str, type(None)) for m in members if m not in enums):
            table["choices"][f.name] = [str(e.value) for member in enums for e in member]
        table["help"][f.name] = f.metadata.get("help", "")
    table["integrations"] = list(INTEGRATION_TO_CALLBACK)
    return table


@functools.cache  # read once a process: every search and train key is checked against it
def _table() -> dict[str, Any]:
    """The table (`_read_off_transformers`), kept in hpsearch's cache for each transformers version: importing
    TrainingArguments imports torch, seconds that the verbs which only read a study (status, export, report,
    simulate) and `hpsearch schema` need not wait for again."""
    try:
        installed = metadata.version("transformers")
    except metadata.PackageNotFoundError:  # no version to key a cached table by (a source checkout on sys.path)
        return _read_off_transformers()
    path = cache_dir() / f"training-arguments-{TABLE_FORMAT}-transformers-{installed}.json"
    try:
        table = json.loads(path.read_text())
        if isinstance(table, dict) and set(table) == {"fields", "items", "choices", "help", "integrations"}:
            return table
    except (OSError, ValueError):
        pass
    table = _read_off_transformers()
    try:  # beside the target, then renamed: a concurrent reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(table))
        os.replace(scratch, path)
    except OSError:  # a read-only home: read off again next time
        pass
    return table


@functools.cache
def training_fields() -> dict[str, tuple[type, ...]]:
    """Each TrainingArguments field with the plain Python types its annotation admits (a class transformers
    takes, say AcceleratorConfig, as a type of that name that no study value is)."""
    return {
        name: tuple(_PLAIN.get(t) or type(t, (), {}) for t in accepted) for name, accepted in _table()["fields"].items()
    }


@functools.cache
def training_items() -> dict[str, tuple[type, ...]]:
    """The plain types the items of each field's list may be (`report_to`, `label_names`: str)."""
    return {name: tuple(_PLAIN[t] for t in accepted) for name, accepted in _table()["items"].items()}


@functools.cache
def training_choices() -> dict[str, tuple[str, ...]]:
    """The values of each field annotated with an Enum that a trial can run: `optim` takes OptimizerNames',
    `save_strategy` SaveStrategy's (less NEED_EVAL_STRATEGY's). Validate refuses any other; the JSON Schema lists
    them."""
    table = _table()["choices"]
    return {
        name: tuple(v for v in values if v not in NEED_EVAL_STRATEGY.get(name, ())) for name, values in table.items()
    }


def training_help() -> dict[str, str]:
    """Each field's help, as transformers words it (its `metadata["help"]`)."""
    return _table()["help"]


def reporting_integrations() -> tuple[str, ...]:
    """The integrations `report_to` may name: those transformers has a callback for (INTEGRATION_TO_CALLBACK) but
    NO_TRIAL_INTEGRATIONS."""
    return tuple(name for name in _table()["integrations"] if name not in NO_TRIAL_INTEGRATIONS)


def report_to_problem(value: Any) -> str | None:
    """Why Trainer would refuse `report_to` written as `value` (a train value, a searched choice, an export's
    argument), whatever is installed here: null, a name it has no callback for or no trial can report to, or none or
    all in a list with other names; None when it takes it. Whether an integration is installed is preflight's to say."""
    if value is None:
        return "null is not allowed; write none for no integration, all for every one installed here"
    names = value if isinstance(value, list) else [value]
    allowed = f"allowed: {', '.join([*REPORT_TO_ALONE, *reporting_integrations()])}"
    for name in names:
        if name in NO_TRIAL_INTEGRATIONS:
            return f"{shown(name)} {NO_TRIAL_INTEGRATIONS[name]}; {allowed}"
        if name not in REPORT_TO_ALONE and name not in reporting_integrations():
            return f"{shown(name)} is not allowed; {allowed}"
        if name in REPORT_TO_ALONE and len(names) > 1:
            alone = "stands alone, not in a list with other integrations"
            return f"{shown(name)} {alone}; allowed: none, all, or a list of names"
    return None


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    if not accepted or object in accepted:
        return True
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int):
        return int in accepted or float in accepted
    if isinstance(value, float):
        return float in accepted
    if value is None:
        return type(None) in accepted
    return isinstance(value, accepted)


def _expected(accepted: tuple[type, ...], items: tuple[type, ...]) -> str:
    """The types a field takes, as a message says them: `list of str or null or str`."""
    listed = f"list of {' or '.join(sorted(t.__name__ for t in items))}" if items else "list"
    return " or ".join(sorted({"null" if t is type(None) else listed if t is list else t.__name__ for t in accepted}))


def name_problem(name: str) -> str | None:
    """Why a training argument named `name` is refused whatever its value, in validate's words; None for a
    TrainingArguments field a study may set."""
    if name in RENAMED_TRAINING_ARGUMENTS:
        return f"not a TrainingArguments field: {RENAMED_TRAINING_ARGUMENTS[name]}"
    if name in RESERVED_TRAINING_ARGUMENTS:
        return f"set by hpsearch: {RESERVED_TRAINING_ARGUMENTS[name]}"
    fields = training_fields()
    if name not in fields:
        close = difflib.get_close_matches(name, [f for f in fields if f not in RESERVED_TRAINING_ARGUMENTS], n=1)
        return unknown_key(f" (did you mean {close[0]}?)" if close else "")
    return None


def unknown_key(hint: str = "") -> str:
    return f"unknown key{hint}; search and train take transformers TrainingArguments field names"


def check_training_argument(name: str, value: Any, source, section: str) -> None:
    fields = training_fields()
    where = f"{section}.{name}" if section else name  # an export's arguments are its file's top level
    problem = name_problem(name)
    if problem is not None:
        raise SpecError(source, where, problem)
    items = training_items().get(name, ())
    if not _fits(value, fields[name]) or (isinstance(value, list) and not all(_fits(v, items) for v in value)):
        raise SpecError(source, where, f"must be {_expected(fields[name], items)}, got {shown(value)}")
    allowed = training_choices().get(name)
    if allowed is not None and value is not None and value not in allowed:
        never = value in NEED_EVAL_STRATEGY.get(name, ())
        why = " (it steps on evaluations, which hpsearch schedules itself)" if never else ""
        raise SpecError(source, where, f"{shown(value)} is not allowed{why}; allowed: {', '.join(allowed)}")
    if name == "report_to":
        problem = report_to_problem(value)
        if problem is not None:
            raise SpecError(source, where, problem)
