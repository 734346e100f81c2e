"""The study file: YAML plus `--set` overrides -> a validated, frozen `Spec`. The bottom of the import
graph: it imports nothing else of hpsearch, and everything else reads it."""

from hpsearch.spec.load import load_spec, parse_spec, parse_value, resolve_path
from hpsearch.spec.types import (
    SETTING_PARAMS,
    DataSpec,
    EarlyStoppingSpec,
    GenerationSpec,
    ParamSpec,
    Spec,
    SpecError,
)

__all__ = [
    "SETTING_PARAMS",
    "DataSpec",
    "EarlyStoppingSpec",
    "GenerationSpec",
    "ParamSpec",
    "Spec",
    "SpecError",
    "load_spec",
    "parse_spec",
    "parse_value",
    "resolve_path",
]
