"""pydantic's validation errors as hpsearch's: `FILE: dotted.key: what was given; what is allowed`,
one line each, every error of the file at once."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hpsearch.errors import SpecError, shown
from hpsearch.spec.fields import SPEC_ERROR

_TYPE_NAMES = {
    "int_type": "int",
    "float_type": "float",
    "bool_type": "bool",
    "string_type": "str",
    "dict_type": "dict",
    "model_type": "dict",
    "model_attributes_type": "dict",
    "list_type": "list",
    "tuple_type": "list",
    "none_required": "null",
}


class SpecErrors(SpecError):
    """Every error of a study file: `field` and `message` are the first's; str() has one line each."""

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(first.source, first.field, first.message)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)


def raise_all(errors: list[SpecError]) -> None:
    """Raise the errors found (one as itself, several as one SpecErrors); nothing when none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)


def _unwrap(hint: Any) -> Any:
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _members(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [_unwrap(m) for m in typing.get_args(hint)]
        return tuple(inner for m in members for inner in (_members(m) or (m,)))  # Optional[Union[...]]
    return ()


def _tag(member: Any) -> str | None:
    """What pydantic writes in an error's location for a union member: a `type` tag or a type name."""
    if isinstance(member, type) and issubclass(member, BaseModel):
        kind = member.model_fields.get("type")
        literal = kind and typing.get_args(_unwrap(kind.annotation))
        return literal[0] if literal else member.__name__
    return getattr(member, "__name__", None)


def _walk(root: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """The dotted key of an error location (without union tags and list indices), and the model that
    holds its last key."""
    keys: list[str] = []
    hint: Any = root
    holder = None
    for part in loc:
        hint = _unwrap(hint)
        members = _members(hint)
        if members:
            chosen = next((m for m in members if _tag(m) == part), None)
            if chosen is not None:
                hint = chosen
                continue
            hint = _unwrap(next((m for m in members if m is not type(None)), None))
        if isinstance(part, int):
            args = typing.get_args(hint)
            hint = args[0] if args else None
            continue
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            holder = hint
            field = hint.model_fields.get(part)
            hint = field.annotation if field else None
        elif typing.get_origin(hint) is dict:
            holder = None
            hint = typing.get_args(hint)[1]
        else:
            hint = None
        keys.append(str(part))
    return keys, holder


def _quoted(text: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", text))


def _message(errors: list[dict], keys: list[str], holder: type[BaseModel] | None) -> str:
    custom = [e for e in errors if e["type"] == SPEC_ERROR]
    if custom:
        return custom[0]["ctx"]["text"]
    first = errors[0]
    given = first["input"]
    kind = first["type"]
    if any(e["type"] == "finite_number" for e in errors):  # nan or inf: not a type problem of a union
        return f"{shown(given)} is not allowed; a finite number"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        names = [k for k in (holder.model_fields if holder else ())]
        typed = holder is not None and "type" in names and keys[0] in ("sampler", "pruner")
        if typed:
            label = holder.model_fields["type"].annotation.__args__[0]
            return f"unknown key for {keys[0]} {label}; allowed: {', '.join(names)}"
        return f"unknown key; allowed: {', '.join(sorted(names))}"
    if kind == "union_tag_invalid":
        return f"{shown(first['ctx']['tag'])} is not allowed; allowed: {_quoted(first['ctx']['expected_tags'])}"
    if kind == "literal_error" and len(errors) == 1:
        return f"{shown(given)} is not allowed; allowed: {_quoted(first['ctx']['expected'])}"
    names = [_TYPE_NAMES.get(e["type"]) for e in errors]
    if all(names):
        return f"must be {' or '.join(dict.fromkeys(names))}, got {shown(given)}"
    return f"{shown(given)}: {first['msg']}"


def spec_errors(exc: ValidationError, root: type[BaseModel], source: str | Path) -> list[SpecError]:
    """One SpecError per key in error, in the order of the file's sections."""
    groups: dict[tuple[str, ...], tuple[list[dict], type[BaseModel] | None]] = {}
    for error in exc.errors():
        keys, holder = _walk(root, error["loc"])
        key = error.get("ctx", {}).get("key") if error["type"] == SPEC_ERROR else None
        if key:
            keys = [*keys, key]
        elif error["type"] == "union_tag_invalid":
            keys = [*keys, "type"]
        groups.setdefault(tuple(keys), ([], holder))[0].append(error)
    return [
        SpecError(source, ".".join(keys), _message(errs, list(keys), holder)) for keys, (errs, holder) in groups.items()
    ]
