"""What a chat row is: a non-empty list of {role, content} messages. Rows that are not are refused naming
the row (the study's `data.messages_column`); a message is kept as its role and its content as text."""

from __future__ import annotations

import datasets

from hpsearch.errors import SpecError, shown


def check(ds: datasets.Dataset, column: str, split: str, source) -> None:
    """Every row a non-empty list of {role, content} messages (a role is text; content may be null)."""
    for i, row in enumerate(ds[column], start=1):
        if not isinstance(row, list):
            problem = f"is {shown(row)}, not a list"
        elif not row:
            problem = "is an empty list"
        else:
            bad = next((m for m in row if not isinstance(m, dict) or not isinstance(m.get("role"), str)), None)
            if bad is None:
                continue
            problem = f"has a message without a role: {shown(bad)}"
        raise SpecError(
            source,
            "data.messages_column",
            f"row {i} of split {split!r} {problem}; each row must be a non-empty list of {{role, content}} messages",
        )


def message(m: dict) -> dict[str, str]:
    """A message as the tasks read it: its role, and its content as text (a null content, a tool call's, is "")."""
    return {"role": m["role"], "content": "" if m.get("content") is None else str(m["content"])}
