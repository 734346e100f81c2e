"""The searched parameters and the fixed TrainingArguments: ranges with inferred types, choices, and
values checked against transformers' fields or hpsearch's own settings (finite, positive sizes)."""

from __future__ import annotations

import difflib
import math
from typing import Any

from hpsearch.errors import SpecError, shown
from hpsearch.spec.fields import INT64_MOST, SEED_LIMIT, SEEDS, finite, is_seed
from hpsearch.spec.messages import raise_all
from hpsearch.spec.rules import Problems
from hpsearch.spec.schema import SearchRange
from hpsearch.spec.training_args import (
    RENAMED_TRAINING_ARGUMENTS,
    RESERVED_TRAINING_ARGUMENTS,
    check_training_argument,
    name_problem,
    named_twice,
    training_fields,
    twice_message,
    unknown_key,
)
from hpsearch.spec.types import SETTING_PARAMS, ParamSpec

# TrainingArguments that count something (sizes, steps, epochs): zero or less trains nothing. max_steps
# is -1 by default (epochs decide): a study may give -1, else a positive number.
POSITIVE_ARGUMENTS = {
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "logging_steps",
    "save_steps",
    "learning_rate",
}
# TrainingArguments that count what may be none: torch's DataLoader refuses -1 workers (after model and data loaded).
NON_NEGATIVE_ARGUMENTS = {"dataloader_num_workers"}
# TrainingArguments with an upper bound (fields.INT64_MOST). A trial counts the samples it trains on, its epochs times
# the train rows or at least one a step, in a 64-bit integer, the step Optuna stores its evaluations under in SQLite
# (1e308 epochs: an OverflowError in every trial; 10**30 steps: a trial evaluated every so many samples hung before
# its first step, counting its schedule back from that budget in floats). A batch is cut from the rows by islice,
# which takes at most sys.maxsize (a larger one: a ValueError in every trial).
MOST_ARGUMENTS = dict.fromkeys(
    ("num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size"), INT64_MOST
)
# TrainingArguments that seed random, numpy and torch (set_seed refuses what numpy refuses).
SEED_ARGUMENTS = ("seed", "data_seed")


# TrainingArguments hpsearch sets itself: evaluations are scheduled on training samples seen, so that
# trials of every batch size are evaluated (and pruned) at the same points.
_ON_SAMPLES = (
    "evaluations are scheduled on training samples seen: set evaluation.every (up to 1, a fraction of"
    " training; above, samples)"
)
SCHEDULED_BY_HPSEARCH = {"eval_strategy": _ON_SAMPLES, "eval_steps": _ON_SAMPLES, "eval_delay": _ON_SAMPLES}
_OWN_SETTING = (
    "not a TrainingArguments field but one of hpsearch's own settings: search it, or set it in its own section"
    " (finetune, lora, model, augmentation)"
)


def key_problem(name: str, section: str) -> str | None:
    """Why `search` or `train` (`section`) refuses the key `name` whatever its value, in validate's words;
    None when it takes it."""
    if name in SCHEDULED_BY_HPSEARCH:
        return f"cannot be {'searched' if section == 'search' else 'set'}; {SCHEDULED_BY_HPSEARCH[name]}"
    if name in SETTING_PARAMS:
        return None if section == "search" else _OWN_SETTING
    if name in training_fields() or name in RENAMED_TRAINING_ARGUMENTS or name in RESERVED_TRAINING_ARGUMENTS:
        return name_problem(name)
    # Unknown: the closest name of any the section knows, and, when the section refuses that one too, why.
    close = difflib.get_close_matches(name, [*training_fields(), *SETTING_PARAMS], n=1)
    if not close:
        return unknown_key()
    refused = key_problem(close[0], section)
    return unknown_key(f" (did you mean {close[0]}?)" if refused is None else f" ({close[0]}, the closest, {refused})")


def keys(section: str) -> tuple[str, ...]:
    """Every key `search` or `train` takes (the installed transformers' TrainingArguments fields that
    key_problem lets through, then hpsearch's own settings for search): what the JSON Schema lists."""
    return tuple(name for name in (*training_fields(), *SETTING_PARAMS) if key_problem(name, section) is None)


def check_value(name: str, value: Any, where: str, section: str, problems: list) -> None:
    """One value of a searched or fixed parameter; a problem found is appended."""
    source = problems.source
    if not finite(value):
        problems.add(where, f"{shown(value)} is not allowed; a finite number")
        return
    try:
        if name in SETTING_PARAMS:
            kinds, ok, allowed = SETTING_PARAMS[name]
            if isinstance(value, bool) or not isinstance(value, kinds) or not ok(value):
                raise SpecError(source, where, f"{shown(value)} is not allowed; {allowed}")
            return
        check_training_argument(name, value, source, section)
    except SpecError as exc:
        problems.append(exc)
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in POSITIVE_ARGUMENTS and number and value <= 0 and not (name == "max_steps" and value == -1):
        problems.add(where, f"{shown(value)} is not allowed; {name} must be > 0")
    if name in NON_NEGATIVE_ARGUMENTS and number and value < 0:
        problems.add(where, f"{shown(value)} is not allowed; {name} must be >= 0")
    if name in MOST_ARGUMENTS and number and value > MOST_ARGUMENTS[name]:
        problems.add(where, f"{shown(value)} is not allowed; {name} must be at most {MOST_ARGUMENTS[name]}")
    if name in SEED_ARGUMENTS and number and not is_seed(value):
        problems.add(where, f"{shown(value)} is not allowed; {SEEDS}")


def argument_bounds(name: str) -> dict[str, int]:
    """The bounds check_value puts on a TrainingArguments value, as a JSON Schema says them (but max_steps', -1 or
    above 0)."""
    bounds = {"exclusiveMinimum": 0} if name in POSITIVE_ARGUMENTS and name != "max_steps" else {}
    if name in NON_NEGATIVE_ARGUMENTS:
        bounds["minimum"] = 0
    if name in SEED_ARGUMENTS:
        bounds.update(minimum=0, maximum=SEED_LIMIT - 1)
    if name in MOST_ARGUMENTS:
        bounds["maximum"] = MOST_ARGUMENTS[name]
    return bounds


def check_arguments(arguments: dict[str, Any], source) -> None:
    """A file of training arguments (an export, perhaps edited by hand) checked as a study file's `train` values
    are: each a TrainingArguments field, of a type it takes, finite, in range (batch sizes above 0, seeds), and no
    argument under both its old and its new name; every error at once, keyed by the argument."""
    problems = Problems(source)
    for name, value in arguments.items():
        check_value(str(name), value, str(name), "", problems)
    for old, new in named_twice(arguments):
        problems.add(old, twice_message(new, new))
    raise_all(problems)


def parse_param(name: str, value: SearchRange, problems) -> ParamSpec | None:
    """One searched parameter; None (with the problems added) when it is not valid."""
    where = f"search.{name}"
    problem = key_problem(name, "search")
    if problem is not None:
        problems.add(where, problem)
        return None
    before = len(problems)
    param = _range(name, value, where, problems)
    if param is None:
        return None
    if name == "model" and param.kind != "categorical":
        problems.add(where, f"must be a list of models (folders or hub ids), got a {param.kind} range")
        return None
    if param.kind == "float" and _whole_numbers_only(name):
        fix = "type: int and int bounds" if value.type == "float" else "int bounds"
        given = f"{shown(value.low)} to {shown(value.high)}"
        problems.add(where, f"a float range ({given}) is not allowed; {name} takes int: give {fix}")
        return None
    values = param.choices if param.kind == "categorical" else (param.low, param.high)
    for v in values:
        check_value(name, v, where, "search", problems)
    return param if len(problems) == before else None


def _whole_numbers_only(name: str) -> bool:
    """A parameter that takes int but not float (a TrainingArguments field or one of hpsearch's own)."""
    if name in SETTING_PARAMS:
        kinds = SETTING_PARAMS[name][0]
    else:
        kinds = training_fields().get(name, ())
    return int in kinds and float not in kinds


def _twice(choices: list) -> str | None:
    """The first choice given twice, as written; the same value is the same choice (0 and 0.0, not 1 and
    true)."""
    seen: dict[Any, Any] = {}
    for choice in choices:
        number = isinstance(choice, (int, float)) and not isinstance(choice, bool)
        key = ("number", choice) if number else (type(choice).__name__, repr(choice))  # 0 == 0.0, as keys too
        if key in seen:
            first = seen[key]
            return shown(choice) if repr(first) == repr(choice) else f"{shown(first)} and {shown(choice)}"
        seen[key] = choice
    return None


def _range(name: str, value: SearchRange, where: str, problems) -> ParamSpec | None:
    kind = value.type
    if kind is None:  # inferred: choices are categorical; two integer bounds an int range, else float
        bounds = (value.low, value.high)
        kind = "categorical" if value.choices is not None else "int" if all(type(b) is int for b in bounds) else "float"
    if kind == "categorical":
        extra = [k for k in ("low", "high", "step") if getattr(value, k) is not None]
        if extra:
            problems.add(f"{where}.{extra[0]}", "unknown key for choices; allowed: type, choices")
            return None
        if value.choices is None:
            problems.add(f"{where}.choices", "is required")
            return None
        if not value.choices:
            problems.add(f"{where}.choices", "is empty; give at least one choice")
            return None
        twice = _twice(value.choices)
        if twice:
            problems.add(f"{where}.choices", f"lists a choice twice ({twice}); each choice once")
            return None
        return ParamSpec(name=name, kind="categorical", choices=tuple(value.choices))
    if value.choices is not None:
        problems.add(f"{where}.choices", "unknown key for a range; allowed: type, low, high, log, step")
        return None
    missing = [k for k in ("low", "high") if getattr(value, k) is None]
    if missing:
        problems.add(f"{where}.{missing[0]}", "is required")
        return None
    low, high, step = value.low, value.high, value.step
    huge = next((k for k in ("low", "high", "step") if not finite(getattr(value, k))), None)
    if huge is not None:  # an integer no float holds (10**400): float() would raise
        problems.add(f"{where}.{huge}", f"{shown(getattr(value, huge))} is not allowed; a finite number")
        return None
    if kind == "int":
        for key in ("low", "high", "step"):
            given = getattr(value, key)
            if given is not None and type(given) is not int:
                problems.add(f"{where}.{key}", f"must be int, got {shown(given)}")
                return None
    else:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    if low >= high:
        problems.add(f"{where}.low", f"low ({shown(low)}) must be below high ({shown(high)})")
    elif value.log and low <= 0:
        problems.add(f"{where}.low", f"a log scale needs low > 0, got {shown(low)}")
    elif value.log and step is not None:
        problems.add(f"{where}.step", "log and step cannot be combined")
    elif step is not None and step <= 0:
        problems.add(f"{where}.step", f"must be > 0, got {shown(step)}")
    elif step is not None and not math.isfinite((high - low) / step):
        problems.add(
            f"{where}.step",
            f"{shown(step)} is too small: (high - low) / step overflows; allowed: a step that divides high - low",
        )
    elif step is not None and abs((high - low) / step - round((high - low) / step)) > 1e-9:
        top = low + math.floor((high - low) / step + 1e-9) * step
        problems.add(f"{where}.high", f"high - low must be a multiple of step {shown(step)}; e.g. high: {top:g}")
    else:
        return ParamSpec(name=name, kind=kind, low=low, high=high, log=value.log, step=step)
    return None


def parse_train(raw: dict[str, Any], search: dict, problems) -> dict[str, Any]:
    """The fixed TrainingArguments: checked names and types, ints given for float fields as floats."""
    train = {}
    fields = training_fields()
    for name, value in raw.items():
        where = f"train.{name}"
        problem = key_problem(name, "train")
        if problem is not None:
            problems.add(where, problem)
            continue
        before = len(problems)
        check_value(name, value, where, "train", problems)
        if len(problems) > before:
            continue
        if name in search:
            problems.add(where, "is also in search; a parameter is either searched or fixed")
        if fields[name] == (float,) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        train[name] = value
    for old, new in named_twice([*raw, *search]):
        section = "train" if new in raw else "search"
        problems.add(f"{'train' if old in raw else 'search'}.{old}", twice_message(new, f"{section}.{new}"))
    return train
