"""The searched space's corners built into transformers' TrainingArguments before a sweep starts: what it
refuses for any of them (`warmup_steps: -0.1`) is refused as the study key its message names."""

from __future__ import annotations

import re
import warnings

from hpsearch.spec import Spec, SpecError
from hpsearch.spec.training_args import OLD_NAME_WARNING
from hpsearch.training.trainer import training_arguments


def _example_params(spec: Spec) -> list[tuple[str, dict]]:
    """The space's low corner, its high corner, and each categorical choice on the low corner."""
    low = {n: (p.choices[0] if p.kind == "categorical" else p.low) for n, p in spec.search.items()}
    high = {n: (p.choices[-1] if p.kind == "categorical" else p.high) for n, p in spec.search.items()}
    points = [("train", low), ("search", high)]
    for name, p in spec.search.items():
        for choice in p.choices[1:]:
            points.append((f"search.{name}", {**low, name: choice}))
    return points


def check_training_arguments(spec: Spec) -> None:
    """TrainingArguments built for the space's corners: a value transformers refuses is a study error."""
    from transformers import TrainingArguments

    for field, params in _example_params(spec):
        try:
            with warnings.catch_warnings():  # an old name is said once, as a note (training.trainer.notes)
                warnings.filterwarnings("ignore", message=OLD_NAME_WARNING, category=FutureWarning)
                TrainingArguments(output_dir="unused", **training_arguments(spec, params))
        except (ValueError, TypeError, ImportError) as exc:
            reason = str(exc).splitlines()[0][:300]
            raise SpecError(
                spec.source, _named_key(spec, reason, field), f"TrainingArguments rejects it: {reason}"
            ) from None


def _named_key(spec: Spec, reason: str, field: str) -> str:
    """The study key transformers' message names (`Got warmup_steps = -0.1`), else `field`."""
    named = set(re.findall(r"\w+", reason))
    sections = [("train", spec.train), ("search", spec.search)]
    if field.startswith("search"):
        sections.reverse()
    for section, keys in sections:
        for key in keys:
            if key in named:
                return f"{section}.{key}"
    return field
