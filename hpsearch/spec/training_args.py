"""Study-file values checked against transformers' `TrainingArguments`: its fields, the types each
admits, the values of those that take an Enum's (`optim`, `lr_scheduler_type`, `save_strategy`, ...)
and their help; read by validate and by the JSON Schema of `train` and `search`."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import types
import typing
from typing import Any

from hpsearch.errors import SpecError

# Keys hpsearch sets itself for every trial; a study file may not set them.
RESERVED_TRAINING_ARGUMENTS = {"output_dir": "hpsearch gives every trial its own output folder"}
# Names users reach for that transformers 5 no longer has.
RENAMED_TRAINING_ARGUMENTS = {
    "warmup_ratio": "use warmup_steps with a float in [0, 1) (a fraction of the training steps)",
    "evaluation_strategy": "use eval_strategy",
    "lr": "use learning_rate",
    "batch_size": "use per_device_train_batch_size",
}


@functools.cache  # read once: every search and train key is checked against it
def _dataclass_fields() -> tuple[tuple[dataclasses.Field, tuple[Any, ...]], ...]:
    """Each field a TrainingArguments takes, with the members of its annotation's union (or itself)."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    out = []
    for f in dataclasses.fields(TrainingArguments):
        if f.init:
            hint = hints[f.name]
            union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
            out.append((f, typing.get_args(hint) if union else (hint,)))
    return tuple(out)


def _is_enum(member: Any) -> bool:
    return isinstance(member, type) and issubclass(member, enum.Enum)


@functools.cache
def training_fields() -> dict[str, tuple[type, ...]]:
    """Each TrainingArguments field with the plain Python types its annotation admits."""
    fields = {}
    for f, members in _dataclass_fields():
        accepted = []
        for member in members:
            member = typing.get_origin(member) or member  # list[str] -> list
            if _is_enum(member):
                member = str  # enum fields take their value names
            if isinstance(member, type):
                accepted.append(member)
        fields[f.name] = tuple(accepted)
    return fields


@functools.cache
def training_choices() -> dict[str, tuple[str, ...]]:
    """The values of each field annotated with an Enum (or its value as a string, or None): `optim` takes
    OptimizerNames', `save_strategy` SaveStrategy's. Validate refuses any other; the JSON Schema lists them."""
    choices = {}
    for f, members in _dataclass_fields():
        enums = [m for m in members if _is_enum(m)]
        if enums and all(m in (str, type(None)) for m in members if not _is_enum(m)):
            choices[f.name] = tuple(str(e.value) for member in enums for e in member)
    return choices


def training_help() -> dict[str, str]:
    """Each field's help, as transformers words it (its `metadata["help"]`)."""
    return {f.name: f.metadata.get("help", "") for f, _ in _dataclass_fields()}


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


def name_problem(name: str) -> str | None:
    """Why a training argument named `name` is refused whatever its value, in validate's words; None for a
    TrainingArguments field a study may set."""
    if name in RENAMED_TRAINING_ARGUMENTS:
        return f"not a TrainingArguments field: {RENAMED_TRAINING_ARGUMENTS[name]}"
    if name in RESERVED_TRAINING_ARGUMENTS:
        return f"set by hpsearch: {RESERVED_TRAINING_ARGUMENTS[name]}"
    fields = training_fields()
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown key{hint}; search and train take transformers TrainingArguments field names"
    return None


def check_training_argument(name: str, value: Any, source, section: str) -> None:
    fields = training_fields()
    where = f"{section}.{name}" if section else name  # an export's arguments are its file's top level
    problem = name_problem(name)
    if problem is not None:
        raise SpecError(source, where, problem)
    if not _fits(value, fields[name]):
        expected = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in fields[name]}))
        raise SpecError(source, where, f"must be {expected}, got {value!r}")
    allowed = training_choices().get(name)
    if allowed is not None and value is not None and value not in allowed:
        raise SpecError(source, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
