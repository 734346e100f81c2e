"""The names a study file may use for what other packages implement: augmentation operations and metrics
of generated text (built in, or installed under an entry-point group). Names only: no training code."""

from __future__ import annotations

import importlib.metadata

# `augmentation.ops`, in the order hpsearch.data.augment implements them.
AUGMENT_OPS = ("word_deletion", "word_swap", "char_noise", "truncation")
# Metrics of generated outputs that hpsearch.training.scoring implements: scores in [0, 1], maximized.
GENERATED_METRICS = ("exact_match", "rouge1", "rouge2", "rougeL")
ENTRY_POINT_GROUP = "hpsearch.metrics"


def installed_metrics() -> dict[str, importlib.metadata.EntryPoint]:
    """The metrics installed packages register under `hpsearch.metrics`, by name (not loaded yet)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_metrics() -> tuple[str, ...]:
    """Every generated-text metric a study may use: the built-ins, then the installed ones."""
    return (*GENERATED_METRICS, *sorted(set(installed_metrics()) - set(GENERATED_METRICS)))


def describe_installed_metrics() -> str:
    """The installed metric names for an error message, with where they come from."""
    found = installed_metrics()
    if not found:
        return f"none (a package registers one under the entry-point group {ENTRY_POINT_GROUP})"
    return ", ".join(f"{name} ({ep.value})" for name, ep in sorted(found.items()))
