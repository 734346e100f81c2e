"""Text as the report shows it: user text escaped for HTML (plotly reads labels as HTML too), and long
categorical choices shortened to the end that tells them apart."""

from __future__ import annotations

import html
from typing import Any

TICK = 24  # characters of a categorical choice on an axis (model names run long)


def escape(text: Any) -> str:
    """User text (names, choices, errors) as HTML."""
    return html.escape(str(text))


def _tick(text: str) -> str:
    """An axis label of at most TICK characters: a long choice (a model's path or hub id) keeps its
    end, the part that tells models apart; the full names are in the summary and the trials table."""
    return text if len(text) <= TICK else "…" + text[-(TICK - 1) :]


def ticks(choices) -> list[str]:
    """Each choice's axis label: shortened by `_tick`, unless two would then read the same
    (…/run-a/checkpoint-best and …/run-b/checkpoint-best): then the full names."""
    short = [_tick(str(c)) for c in choices]
    return short if len(set(short)) == len(short) else [str(c) for c in choices]
