"""A JSON Schema check of the keywords hpsearch's schema uses (draft 2020-12 semantics), for tests: the
jsonschema package is not a dependency. A keyword it does not know is an error, so a schema that grows
one is not passed unchecked."""

from __future__ import annotations

from typing import Any

# Keywords that say nothing about validity.
_ANNOTATIONS = {"$schema", "$defs", "title", "description", "default", "discriminator"}
_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def errors(schema: dict, value: Any, root: dict | None = None, where: str = "") -> list[str]:
    """Where `value` breaks `schema` (dotted keys, as hpsearch names them), each with the keyword; [] when valid."""
    root = schema if root is None else root
    out: list[str] = []
    at = where or "(top)"
    for keyword, arg in schema.items():
        if keyword in _ANNOTATIONS or keyword in ("properties", "additionalProperties"):
            continue
        if keyword == "$ref":
            assert arg.startswith("#/$defs/"), arg
            out += errors(root["$defs"][arg.removeprefix("#/$defs/")], value, root, where)
        elif keyword == "type":
            kinds = [arg] if isinstance(arg, str) else arg
            if not any(_TYPES[k](value) for k in kinds):
                out.append(f"{at}: type {arg}")
        elif keyword == "enum":
            if not any(_same(value, v) for v in arg):
                out.append(f"{at}: enum")
        elif keyword == "const":
            if not _same(value, arg):
                out.append(f"{at}: const")
        elif keyword == "allOf":
            out += [e for sub in arg for e in errors(sub, value, root, where)]
        elif keyword in ("anyOf", "oneOf"):
            matching = sum(not errors(sub, value, root, where) for sub in arg)
            if matching == 0 or (keyword == "oneOf" and matching > 1):
                out.append(f"{at}: {keyword} ({matching} match)")
        elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if _TYPES["number"](value):
                ok = {"minimum": value >= arg, "maximum": value <= arg}.get(keyword)
                ok = ok if ok is not None else (value > arg if keyword == "exclusiveMinimum" else value < arg)
                if not ok:
                    out.append(f"{at}: {keyword} {arg}")
        elif keyword == "required":
            if isinstance(value, dict):
                out += [f"{at}: required {key}" for key in arg if key not in value]
        elif keyword == "maxItems":
            if isinstance(value, list) and len(value) > arg:
                out.append(f"{at}: maxItems {arg}")
        elif keyword == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    out += errors(arg, item, root, f"{where}[{i}]")
        else:
            raise AssertionError(f"tests/schema_check.py does not know the keyword {keyword!r}")
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if key in properties:
                out += errors(properties[key], item, root, inner)
            elif extra is False:
                out.append(f"{inner}: additionalProperties")
            elif isinstance(extra, dict):
                out += errors(extra, item, root, inner)
    return out
