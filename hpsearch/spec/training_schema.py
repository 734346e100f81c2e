"""The study file's JSON Schema (`hpsearch schema`): pydantic's, with `train` and `search` made from the
installed transformers when it is asked for (so it follows the version installed): the keys validate takes
(search.keys), each with the JSON type its TrainingArguments annotation admits and transformers' help."""

from __future__ import annotations

from typing import Any

from hpsearch.spec.schema import StudyFile
from hpsearch.spec.search import argument_bounds, keys
from hpsearch.spec.training_args import (
    REPORT_TO_ALONE,
    reporting_integrations,
    training_choices,
    training_fields,
    training_help,
    training_items,
)
from hpsearch.spec.types import SETTING_PARAMS

# Python types a study value can have (YAML's), as JSON Schema names them; in this order in a type list.
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
_NULL = type(None)


def _json_type(accepted: tuple[type, ...]) -> dict[str, Any]:
    """What a JSON Schema says of the types validate accepts: nothing when one has no JSON form (a class
    transformers takes), as validate checks nothing when it knows no type. A float field takes integers."""
    if not accepted or any(t not in _JSON_TYPES and t is not _NULL for t in accepted):
        return {}
    names = [name for t, name in _JSON_TYPES.items() if t in accepted and not (t is int and float in accepted)]
    names += ["null"] if _NULL in accepted else []
    return {"type": names[0] if len(names) == 1 else names}


def _enum(name: str) -> dict[str, Any] | None:
    """The values validate takes of a TrainingArguments field annotated with an Enum, or of one integration of
    report_to (None for another field)."""
    if name == "report_to":
        return {"enum": [*REPORT_TO_ALONE, *reporting_integrations()]}
    choices = training_choices().get(name)
    return None if choices is None else {"enum": [*choices, *([None] if _NULL in training_fields()[name] else [])]}


def _report_to() -> dict[str, Any]:
    """report_to as validate takes it (training_args.report_to_problem): a name or a list of them, none and all alone
    (the string, or a list of that one); never null."""
    one = _enum("report_to")
    listed = {"type": "array", "items": {"enum": list(reporting_integrations())}}
    return {"anyOf": [one, {"type": "array", "items": one, "maxItems": 1}, listed]}


def _argument(name: str) -> dict[str, Any]:
    """One TrainingArguments field: the values of its Enum, or its JSON type; its help."""
    accepted, value = training_fields()[name], _report_to() if name == "report_to" else _enum(name)
    if value is None:
        value = {**_json_type(accepted), **argument_bounds(name)}
        items = training_items().get(name)
        if value.get("type") and items:  # a list's items, as validate checks them
            value["items"] = _json_type(items)
    text = " ".join(training_help()[name].split())
    return {**value, "description": text} if text else value


def _searched(name: str) -> dict[str, Any]:
    """One searched parameter: a SearchParam, described as its TrainingArguments field or hpsearch's setting; a
    field's Enum values are its only choices (as a list, or as a mapping's `choices`)."""
    param: dict[str, Any] = {"$ref": "#/$defs/SearchParam"}
    if name in SETTING_PARAMS:
        text = f"hpsearch's own setting (not a TrainingArguments field): {SETTING_PARAMS[name][2]}."
    else:
        text = " ".join(training_help()[name].split())
        values = _enum(name)
        if values is not None:
            listed = {"items": values}  # a list of choices, or a mapping's `choices`
            either = {"anyOf": [{"type": "array", **listed}, {"type": "object", "properties": {"choices": listed}}]}
            param = {"allOf": [param, either]}
    return {**param, **({"description": text} if text else {})}


def add_training_arguments(schema: dict[str, Any]) -> None:
    """Limit `train` and `search` of a study file's JSON Schema (pydantic's) to the keys validate takes, so
    an editor completes them and flags a misspelt one; each `search` value stays a SearchParam."""
    properties = schema["properties"]
    search, train = properties["search"], properties["train"]
    schema["$defs"]["SearchParam"] = search["additionalProperties"]
    search.update(properties={name: _searched(name) for name in keys("search")}, additionalProperties=False)
    train.update(properties={name: _argument(name) for name in keys("train")}, additionalProperties=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a study file, for editors' YAML language servers: pydantic's, with `train` and
    `search` limited to the keys validate takes of the installed transformers' TrainingArguments."""
    schema = StudyFile.model_json_schema()
    add_training_arguments(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hpsearch study file"
    return schema
