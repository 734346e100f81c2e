"""What a chat row is: a non-empty list of {role, content} messages, given as a list (JSON, parquet, the hub)
or as that list's JSON text (a CSV cell). Other rows are refused naming the row (`data.messages_column`)."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from hpsearch.errors import SpecError, shown

RULE = "each row must be a non-empty list of {role, content} messages, or that list as JSON text"


def _problem(row) -> str | None:
    """What is wrong with a row's messages (a role is text; content may be null), or None."""
    if not isinstance(row, list):
        return f"is {shown(row)}, not a list"
    if not row:
        return "is an empty list"
    bad = next(((m,) for m in row if not isinstance(m, dict) or not isinstance(m.get("role"), str)), None)
    return None if bad is None else f"has a message without a role: {shown(bad[0])}"  # bad[0] may be None


def _decoded(cell: str) -> tuple[object, str | None]:
    """(the value, None) of a cell's JSON text, or (None, what is wrong with it)."""
    try:
        value = json.loads(cell)
    except ValueError as exc:
        return None, f"is {shown(cell)}, text that is not JSON ({exc})"
    if not isinstance(value, list):
        return None, f"is {shown(cell)}, JSON text of a {type(value).__name__}, not of a list"
    return value, None


def checked(ds: datasets.Dataset, column: str, split: str, source, file: str | None = None) -> datasets.Dataset:
    """The split with every row of COLUMN a list of messages: a row of JSON text is decoded (the column
    then holds `message`s); a row that is no such list is refused, naming the row (and FILE, the split's)."""
    where = f"split {split!r}" + (f" ({file})" if file else "")

    def refuse(i: int, problem: str) -> None:
        raise SpecError(source, "data.messages_column", f"row {i} of {where} {problem}; {RULE}")

    if _typed_as_messages(ds, column):  # Arrow typed every row alike: find a bad one without reading rows
        bad = _first_bad_typed(ds.with_format("arrow")[column])
        if bad is not None:
            refuse(bad + 1, _problem(ds[bad][column]))
        return ds
    rows, decoded = [], False
    for i, row in enumerate(ds[column], start=1):
        problem = None
        if isinstance(row, str):
            row, problem = _decoded(row)
            decoded = True
        problem = problem or _problem(row)
        if problem:
            refuse(i, problem)
        rows.append(row)
    if not decoded:
        return ds
    # Built anew, not `remove_columns(column).add_column(...)`: a split whose one column is the chat (a CSV
    # of chats alone) would have no rows left to add the decoded column to.
    kept = {name: ds[name] for name in ds.column_names if name != column}
    return datasets.Dataset.from_dict({**kept, column: [[message(m) for m in row] for row in rows]})


def _typed_as_messages(ds: datasets.Dataset, column: str) -> bool:
    """Whether Arrow typed the column as lists of structs with a text `role`: then a row can only be wrong
    by being null or empty, or by a null message or role, which Arrow finds without turning rows into
    Python objects (seconds for every 100,000 chats)."""
    kind = ds.data.schema.field(column).type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_struct(kind.value_type):
        return False
    roles = kind.value_type.get_field_index("role")
    return roles >= 0 and (
        pa.types.is_string(kind.value_type[roles].type) or pa.types.is_large_string(kind.value_type[roles].type)
    )


def _first_bad_typed(cells: pa.Array | pa.ChunkedArray) -> int | None:
    """The index of the first null or empty row, or row with a null message or role, or None."""
    lists = cells.combine_chunks() if isinstance(cells, pa.ChunkedArray) else cells
    bad_rows = pc.fill_null(pc.or_(pc.is_null(lists), pc.equal(pc.list_value_length(lists), 0)), True)
    messages = pc.list_flatten(lists)
    bad_messages = pc.or_(pc.is_null(messages), pc.is_null(pc.struct_field(messages, "role")))
    candidates = pc.indices_nonzero(bad_rows).to_pylist()[:1]
    candidates += pc.filter(pc.list_parent_indices(lists), bad_messages).to_pylist()[:1]
    return min(candidates, default=None)


def message(m: dict) -> dict[str, str]:
    """A message as the tasks read it: its role, and its content as text (a null content, a tool call's, is "")."""
    return {"role": m["role"], "content": "" if m.get("content") is None else str(m["content"])}
