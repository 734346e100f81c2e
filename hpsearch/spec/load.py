"""Study file (YAML, UTF-8) plus `--set` overrides -> a validated, frozen `Spec` (see build.py).

Every error names the file, the field, what was given and what is allowed, and is raised as
`SpecError` before anything is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hpsearch.errors import SpecError, shown
from hpsearch.spec.build import parse_spec
from hpsearch.spec.paths import resolve_path
from hpsearch.spec.types import Spec


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"{key!r} is given twice in one mapping: line {first} and line {second}")
        self.key, self.first, self.second = key, first, second


class NotAName(yaml.YAMLError):
    """A mapping key that is not a string: every key of a study file is a name."""

    def __init__(self, node: yaml.Node, key: Any) -> None:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):  # `1:`, `null:`, `on:` (YAML 1.1 reads it as true)
            text = f"{node.value!r} (read as {key!r}) is not a name; quote it"
        else:
            text = f"{key!r} is not a name; keys are names"
        super().__init__(f"line {line}: the key {text}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e-5 as a float (YAML 1.1 wants 1.0e-5), dates as plain strings, and
    refuses a key given twice in one mapping (PyYAML would keep the last silently) and a key that is not
    a name (`1:`, `null:`, `? [a, b]`)."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError):  # `!!int abc`, `!!bool maybe`
            value = shown(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            problem = f"{node.tag.replace('tag:yaml.org,2002:', '!!')} cannot read {value}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):  # `!!map [1]`: PyYAML's own error, with its line
            return super().construct_mapping(node, deep=deep)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise NotAName(key_node, key)
            if key in seen:
                raise DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


class Dumper(yaml.SafeDumper):
    """SafeDumper that quotes every text that _Loader, or PyYAML's SafeLoader, would read as another type: `1e3`,
    `2e-05` (a float to _Loader, unquoted by SafeDumper) or `2024-01-01` (a date to SafeLoader). What hpsearch
    writes (an export, its manifest) reads back as written, by hpsearch and by a user's `yaml.safe_load`."""


Dumper.yaml_implicit_resolvers = {
    first: [*yaml.SafeDumper.yaml_implicit_resolvers.get(first, []), *_Loader.yaml_implicit_resolvers.get(first, [])]
    for first in {*yaml.SafeDumper.yaml_implicit_resolvers, *_Loader.yaml_implicit_resolvers}
}


def parse_value(text: str) -> Any:
    """A `--set` value: YAML scalar or flow list, so `3`, `1e-4`, `true`, `[8, 16]` all work."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def read_text(path: Path, expected: str = "a study file is UTF-8 YAML") -> str:
    """The file as UTF-8 text; a binary file or another encoding is a user error, not a traceback
    (`expected` says what the file should be)."""
    data = path.read_bytes()
    if b"\0" in data:
        raise SpecError(path, "", f"is not a text file (it holds NUL bytes); {expected}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            path, "", f"is not UTF-8 text (byte {data[exc.start]:#x} on line {line}); save it as UTF-8"
        ) from None


def document_format(path: Path) -> str:
    """How `read_document` reads a file, by its suffix: "json" for a .json (any case), else "yaml"."""
    return "json" if path.suffix.lower() == ".json" else "yaml"


def read_document(path: Path, expected: str, nested: str) -> Any:
    """A YAML or JSON file hpsearch reads beside a study file (a configs file, an export), read as a study file is:
    UTF-8 text without NUL bytes (`expected` says what the file should be), a byte order mark skipped, a key given
    twice refused. A .json as JSON (json.dumps writes an emoji as a surrogate pair, which YAML reads as two halves),
    any other with the study file's loader (`1e-4` is a float). `nested` ends the message of one nested too deeply."""
    try:
        text = read_text(path, expected).removeprefix("\ufeff")
    except OSError as exc:
        raise SpecError(path, "", f"cannot read it: {exc.strerror}") from None
    try:
        if document_format(path) == "json":
            return json.loads(text, object_pairs_hook=lambda pairs: _once(pairs, path))
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise malformed_yaml(path, exc) from None
    except json.JSONDecodeError as exc:
        raise SpecError(path, "", f"malformed JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise SpecError(path, "", f"malformed JSON: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise SpecError(path, "", f"nested too deeply {nested}") from None


def _once(pairs: list[tuple[str, Any]], path: Path) -> dict[str, Any]:
    """A JSON object whose keys are each given once (json.loads would keep the last silently)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise SpecError(path, key, "given twice in one object; give it once")
        seen.add(key)
    return dict(pairs)


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read a study file, apply `KEY=VALUE` overrides and validate everything."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "", "no such study file")
    text = read_text(path)
    try:
        raw = yaml.load(text, Loader=_Loader)
    except DuplicateKey as exc:
        raise SpecError(
            path, str(exc.key), f"given twice in one mapping: line {exc.first} and line {exc.second}"
        ) from None
    except RecursionError:
        raise SpecError(path, "", "malformed YAML: nested too deeply to be a study file") from None
    except yaml.YAMLError as exc:
        raise malformed_yaml(path, exc) from None
    if not isinstance(raw, dict):
        raise SpecError(path, "", "a study file is a mapping of keys (name, task, model, ...)")
    from_cli = apply_overrides(raw, overrides, path)
    return parse_spec(raw, path, from_cli)


def malformed_yaml(path: str | Path, exc: yaml.YAMLError) -> SpecError:
    """A YAML error as hpsearch prints it: the file, then the line and column of the problem."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return SpecError(path, "", f"malformed YAML: {where}{problem}")


def apply_overrides(raw: dict, overrides, source) -> set[str]:
    """Apply `a.b.c=value` overrides in place; returns the dotted keys that were set."""
    keys = set()
    for item in overrides:
        if "=" not in item:
            raise SpecError(source, "--set", f"{shown(item)} is not KEY=VALUE (e.g. sampler.type=random)")
        dotted, _, text = item.partition("=")
        parts = dotted.strip().split(".")
        if not all(parts):
            raise SpecError(source, "--set", f"{shown(dotted)} is not a dotted key")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(source, ".".join(parts[: i + 1]), "is not a mapping; cannot set a key in it")
            node = child
        node[parts[-1]] = parse_value(text)
        keys.add(dotted.strip())
    return keys


__all__ = [
    "Dumper",
    "apply_overrides",
    "load_spec",
    "parse_spec",
    "parse_value",
    "read_document",
    "resolve_path",
]
