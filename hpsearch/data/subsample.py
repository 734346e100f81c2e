"""A fixed subsample of an eval split for intermediate evaluations: stratified by label where there are
labels (each label keeps its share, at least one row), seeded, the same rows for every trial."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_rows(labels: Sequence[int] | None, total: int, n: int, seed: int) -> list[int]:
    """`n` row indices of `total` (all of them when n >= total), in the split's order. With labels, each
    label gets its share of `n` rounded by largest remainder, and at least one row while n allows."""
    if n >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    if labels is None:
        return sorted(rng.choice(total, size=n, replace=False).tolist())
    labels = np.asarray(labels)
    groups = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    share = {label: n * len(rows) / total for label, rows in groups.items()}
    floor = 1 if n >= len(groups) else 0  # at least one row per label, when there are rows enough
    take = {label: min(len(groups[label]), max(floor, int(s))) for label, s in share.items()}
    # Hand the rows still missing (or taken too many, by the at-least-one rule) by largest remainder.
    order = sorted(groups, key=lambda label: share[label] - int(share[label]), reverse=True)
    while sum(take.values()) < n:
        for label in order:
            if sum(take.values()) < n and take[label] < len(groups[label]):
                take[label] += 1
    while sum(take.values()) > n:
        for label in reversed(order):
            if sum(take.values()) > n and take[label] > floor:
                take[label] -= 1
    chosen = [rng.choice(groups[label], size=take[label], replace=False) for label in groups]
    return sorted(int(i) for rows in chosen for i in rows)
