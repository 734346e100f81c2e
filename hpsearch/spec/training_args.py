"""Study-file values checked against transformers' `TrainingArguments`: its fields, the types each
admits, and the names it accepts for `optim` and `lr_scheduler_type`."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import types
import typing
from collections.abc import Iterable
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
# Old names transformers 5.25 still takes for renamed fields (it warns on them; transformers 6 drops them). A
# study may write either name; given both, transformers takes the new one and drops the old without a word.
OLD_NAMES = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}


def named_twice(names: Iterable[str]) -> list[tuple[str, str]]:
    """(old name, new name) of each argument that `names` give under both."""
    given = set(names)
    return [(old, new) for old, new in OLD_NAMES.items() if old in given and new in given]


def twice_message(new: str, where_new: str) -> str:
    """What an old name is told when its new name `new` is set too, at `where_new`."""
    return (
        f"is the old name of {new}, which is set too ({where_new}); transformers would drop this one: set one of them"
    )


@functools.cache  # read once: every search and train key is checked against it
def training_fields() -> dict[str, tuple[type, ...]]:
    """Each TrainingArguments field with the plain Python types its annotation admits."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    fields = {}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init:
            continue
        hint = hints[f.name]
        members = (
            typing.get_args(hint)
            if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
            else (hint,)
        )
        accepted = []
        for member in members:
            member = typing.get_origin(member) or member  # list[str] -> list
            if isinstance(member, type) and issubclass(member, enum.Enum):
                member = str  # enum fields take their value names
            if isinstance(member, type):
                accepted.append(member)
        fields[f.name] = tuple(accepted)
    return fields


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


def _choices_for(name: str) -> tuple[str, ...] | None:
    """Names transformers accepts for the string-valued arguments we can check up front."""
    if name == "optim":
        from transformers.training_args import OptimizerNames

        return tuple(o.value for o in OptimizerNames)
    if name == "lr_scheduler_type":
        from transformers.trainer_utils import SchedulerType

        return tuple(s.value for s in SchedulerType)
    return None


def check_training_argument(name: str, value: Any, source, section: str) -> None:
    fields = training_fields()
    where = f"{section}.{name}" if section else name  # an export's arguments are its file's top level
    if name in RENAMED_TRAINING_ARGUMENTS:
        raise SpecError(source, where, f"not a TrainingArguments field: {RENAMED_TRAINING_ARGUMENTS[name]}")
    if name in RESERVED_TRAINING_ARGUMENTS:
        raise SpecError(source, where, f"set by hpsearch: {RESERVED_TRAINING_ARGUMENTS[name]}")
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SpecError(
            source, where, f"unknown key{hint}; search and train take transformers TrainingArguments field names"
        )
    if not _fits(value, fields[name]):
        expected = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in fields[name]}))
        raise SpecError(source, where, f"must be {expected}, got {value!r}")
    allowed = _choices_for(name)
    if allowed is not None and value not in allowed:
        raise SpecError(source, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
