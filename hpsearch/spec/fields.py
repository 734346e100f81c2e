"""Building blocks of the study-file schema: the base model every section shares and constrained
number types whose errors read as hpsearch's own messages ("must be > 0, got 0")."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hpsearch.errors import cut, shown

# The error type the message translator passes through as written (see messages.py).
SPEC_ERROR = "spec"


def fail(text: str, key: str | None = None) -> PydanticCustomError:
    """A schema error whose message is `text`; `key` names the sub-key it belongs to (for a
    validator of a whole section that blames one of its keys)."""
    ctx: dict[str, Any] = {"text": text}
    if key is not None:
        ctx["key"] = key
    return PydanticCustomError(SPEC_ERROR, "{text}", ctx)


class Section(BaseModel):
    """A part of the study file: strict types (no "3" for 3), finite numbers, no unknown keys, frozen."""

    model_config = ConfigDict(
        strict=True, frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


class _Given:
    """A value as a rule's message quotes it: `{v!r}` its repr, `{v}` as it is written, cut to 60 characters."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return shown(self.value)

    def __format__(self, spec: str) -> str:
        return cut(format(self.value, spec))


def rule(ok: Callable[[Any], bool], message: str) -> AfterValidator:
    """A check of one value; `message` is formatted with the value as `{v}` (or `{v!r}`, cut)."""

    def check(value: Any) -> Any:
        if value is not None and not ok(value):
            raise fail(message.format(v=_Given(value)))
        return value

    return AfterValidator(check)


def allowed(ok: Callable[[Any], bool], what: str) -> AfterValidator:
    """A check whose message is `VALUE is not allowed; WHAT` (the settings' wording)."""
    return rule(ok, "{v!r} is not allowed; " + what)


def bounds(**limits: float) -> Any:
    """The JSON Schema's bounds of a constrained number (`minimum=1`), so an editor flags what the rule
    beside it refuses."""
    return Field(json_schema_extra=limits)


Positive = Annotated[int, rule(lambda v: v > 0, "must be > 0, got {v}"), bounds(minimum=1)]
PositiveFloat = Annotated[float, rule(lambda v: v > 0, "must be > 0, got {v}"), bounds(exclusiveMinimum=0)]
NonNegative = Annotated[int, rule(lambda v: v >= 0, "must be >= 0, got {v}"), bounds(minimum=0)]
AtLeastOne = Annotated[int, allowed(lambda v: v >= 1, "a whole number >= 1"), bounds(minimum=1)]


def at_most(kind: Any, limit: int) -> Any:
    """`kind` no larger than `limit`, in validate and in the JSON Schema: a count or seconds that later code holds
    in a fixed-size number, which a larger one breaks when a trial meets it (or that no study would live to end)."""
    return Annotated[kind, allowed(lambda v: v <= limit, f"at most {limit}"), bounds(maximum=limit)]


# The largest 32-bit signed integer: Optuna numbers trials in SQL INTEGER columns (32-bit in PostgreSQL and MySQL),
# and torch.distributed counts a trial's processes in a C int.
INT32_MOST = 2**31 - 1
Count = at_most(Positive, INT32_MOST)
# The largest 64-bit signed integer, where later code holds a count in one: SQLite stores a trial's reported step
# (training samples seen) in a 64-bit INTEGER, Python's islice, which batches a split's rows, takes at most
# sys.maxsize, and tokenizers hold a truncation length in a 64-bit integer (10**30: an OverflowError from validate).
INT64_MOST = 2**63 - 1
Length = at_most(Positive, INT64_MOST)  # a number of tokens
# What a thread can wait, 292 years on Linux: Optuna's heartbeat thread waits heartbeat.interval seconds at a time
# (longer is an OverflowError), and a grace period need only be longer (beyond 3e6 years, its timedelta fails).
Seconds = at_most(Positive, int(threading.TIMEOUT_MAX))
# What random.seed, numpy and torch all take (numpy refuses a negative seed or one of 2**32 and above).
SEED_LIMIT = 2**32
SEEDS = f"a whole number in [0, {SEED_LIMIT - 1}]"  # what a seed may be, as the messages say it


def is_seed(value: Any) -> bool:
    return 0 <= value < SEED_LIMIT


Seed = Annotated[
    int,
    allowed(is_seed, SEEDS),
    bounds(minimum=0, maximum=SEED_LIMIT - 1),
]
Probability = Annotated[
    float, allowed(lambda v: 0 <= v < 1, "a number in [0, 1)"), bounds(minimum=0, exclusiveMaximum=1)
]
ClosedProbability = Annotated[float, allowed(lambda v: 0 <= v <= 1, "a number in [0, 1]"), bounds(minimum=0, maximum=1)]


def finite(value: Any) -> bool:
    """True for every value but a number no float holds: nan, infinite, or an integer beyond float's range (10**400,
    which float() refuses), in any nesting of lists."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= sys.float_info.max
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    return True


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"must be int or float, got {shown(value)}")
    if not finite(value):
        raise fail(f"{shown(value)} is not allowed; a finite number")
    return float(value)


# A float a user may write as an integer (16 for 16.0), with "int or float" in its type message.
Number = Annotated[float, BeforeValidator(_number)]
