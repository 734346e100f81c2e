"""Chat rows Arrow typed as lists of {role, content} structs are checked in Arrow, not row by row in Python:
the same rows refused, with the same message, as the row-by-row check of the same data."""

from __future__ import annotations

import datasets
import pytest

from hpsearch.data import chats
from hpsearch.errors import SpecError

GOOD = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]


def outcome(ds: datasets.Dataset) -> str:
    """What checking the column says: 'ok' or the refusal's message."""
    try:
        chats.checked(ds, "m", "train", "s.yaml", "train.jsonl")
    except SpecError as exc:
        return str(exc)
    return "ok"


def row_by_row(ds: datasets.Dataset, monkeypatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(chats, "_typed_as_messages", lambda *_: False)
        return outcome(ds)


def two_chunks(rows: list) -> datasets.Dataset:
    """The rows as a dataset of two Arrow chunks (a bad row's place counted across them)."""
    half = len(rows) // 2
    return datasets.concatenate_datasets(
        [datasets.Dataset.from_list(rows[:half]), datasets.Dataset.from_list(rows[half:])]
    )


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        (None, "is None, not a list"),
        ([], "is an empty list"),
        ([{"role": "user", "content": "hi"}, None], "has a message without a role: None"),
        ([{"role": None, "content": "hi"}], "has a message without a role: {'role': None, 'content': 'hi'}"),
    ],
)
@pytest.mark.parametrize("at", [0, 3, 6])
def test_typed_chats_refuse_the_first_bad_row_as_the_row_by_row_check(monkeypatch, bad, found, at):
    rows = [{"m": GOOD} for _ in range(7)]
    rows[at] = {"m": bad}
    rows[-1] = {"m": []} if at != 6 else rows[-1]  # a later bad row: the first one is named
    for ds in (datasets.Dataset.from_list(rows), two_chunks(rows)):
        assert chats._typed_as_messages(ds, "m")
        said = outcome(ds)
        assert said == row_by_row(ds, monkeypatch)
        assert said.startswith(f"s.yaml: data.messages_column: row {at + 1} of split 'train' (train.jsonl) {found}")


def test_a_selection_of_typed_chats_is_checked_on_its_own_rows(monkeypatch):
    rows = [{"m": GOOD}, {"m": []}, {"m": GOOD}, {"m": None}, {"m": GOOD}]
    ds = datasets.Dataset.from_list(rows)
    assert outcome(ds.select([0, 2, 4])) == "ok"  # the bad rows are not in the selection
    picked = ds.select([4, 3, 0])
    assert outcome(picked) == row_by_row(picked, monkeypatch)
    assert "row 2 of split 'train' (train.jsonl) is None, not a list" in outcome(picked)


def test_good_typed_chats_are_kept_as_they_are():
    ds = two_chunks([{"m": GOOD, "id": i} for i in range(6)])
    assert chats.checked(ds, "m", "train", "s.yaml") is ds


@pytest.mark.parametrize(
    "rows",
    [
        [{"m": "[]"}],  # JSON text (a CSV cell): decoded row by row
        [{"m": [{"content": "hi"}]}],  # no role field in the struct
        [{"m": [{"role": 1, "content": "hi"}]}],  # a role that is not text
    ],
)
def test_chats_arrow_did_not_type_as_messages_are_checked_row_by_row(rows):
    ds = datasets.Dataset.from_list(rows)
    assert not chats._typed_as_messages(ds, "m")
    assert "row 1 of split 'train' (train.jsonl)" in outcome(ds)
