"""The searched space's corners built into transformers' TrainingArguments before a sweep starts: what it
refuses for any of them (`warmup_steps: -0.1`) is refused as the study key its message names."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

from hpsearch.errors import shown
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
    for field, params in _example_params(spec):
        sections = [("train", spec.train), ("search", spec.search)]
        build_or_refuse(
            training_arguments(spec, params), spec.source, sections[:: -1 if field.startswith("search") else 1], field
        )


def build_or_refuse(arguments: dict, source, sections: list[tuple[str, Iterable[str]]], field: str) -> None:
    """TrainingArguments(**arguments), or a SpecError keyed by the key its message names (`Got warmup_steps =
    -0.1`): the first of `sections`' keys (`section.key`, or the key alone for the section ""), else `field`.
    Its `report_to` must name integrations installed here: a trial's Trainer would refuse the others."""
    from transformers import TrainingArguments

    try:
        with warnings.catch_warnings():  # an old name is said once, as a note (training.trainer.notes)
            warnings.filterwarnings("ignore", message=OLD_NAME_WARNING, category=FutureWarning)
            built = TrainingArguments(output_dir="unused", **arguments)
    except (ValueError, TypeError, ImportError) as exc:
        reason = str(exc).splitlines()[0][:300]
        key = _key(set(re.findall(r"\w+", reason)), sections, field)
        raise SpecError(source, key, f"TrainingArguments rejects it: {reason}") from None
    problem = _reporting_problem(built.report_to)
    if problem is not None:
        raise SpecError(source, _key({"report_to"}, sections, field), problem)


def _key(named: set[str], sections: list[tuple[str, Iterable[str]]], field: str) -> str:
    """The first of `sections`' keys among `named`, as the file writes it; else `field`."""
    return next((f"{s}.{k}" if s else k for s, keys in sections for k in keys if k in named), field)


def _reporting_problem(report_to: list[str]) -> str | None:
    """Why Trainer would refuse `report_to` (as TrainingArguments resolved it: `all` is the installed integrations)
    here: an integration not installed. What it refuses wherever it runs (null, an unknown name, none in a list) the
    spec refused (training_args.report_to_problem)."""
    installed = _installed()
    for name in report_to:
        if name not in installed:
            return f"{shown(name)} is not installed here; allowed: {', '.join(['none', 'all', *installed])}"
    return None


def _installed() -> list[str]:
    """The integrations whose callback Trainer can build here: transformers' list of those installed (what `all`
    reads), and azure_ml whenever azureml is. The list leaves azure_ml out when mlflow is installed too, but
    AzureMLCallback, which Trainer builds for a report_to that names azure_ml, needs azureml alone."""
    from transformers.integrations import integration_utils

    installed = integration_utils.get_available_reporting_integrations()
    if integration_utils.is_azureml_available() and "azure_ml" not in installed:
        installed = ["azure_ml", *installed]
    return installed
