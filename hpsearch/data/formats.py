"""Where a study's rows come from: a local file in each format hpsearch reads, a folder of one file per split,
a folder `datasets`' save_to_disk wrote, or a hub dataset. Errors are the study's (`data.path`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets

from hpsearch.spec import SpecError

READERS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
# What pandas names an unnamed index level when it writes a frame whose index is not 0, 1, 2, ... (a filtered
# or shuffled frame) to parquet; `datasets` keeps the name (Dataset.from_pandas, save_to_disk, the hub).
PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def read_file(path: Path, source, used: frozenset[str] = frozenset()) -> datasets.Dataset:
    """The file's rows; `used` names the columns the task reads (see `_one_type_per_column`)."""
    import pandas as pd

    kind = READERS[path.suffix.lower()]
    try:
        if kind == "csv":  # as text: "007" stays "007" and an empty cell is "", not NaN
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif kind == "parquet":  # as Arrow: a parquet `datasets` wrote keeps its ClassLabel names
            import pyarrow.parquet as pq

            return datasets.Dataset(pq.read_table(path))
        else:  # utf-8-sig: a byte order mark is skipped, as for CSV; a .json may hold JSON Lines
            try:
                frame = pd.read_json(path, lines=(kind == "jsonl"), dtype=False, encoding="utf-8-sig")
            except ValueError:
                if kind == "jsonl":
                    raise
                frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8-sig")
        frame = _one_type_per_column(frame, used)
        try:
            return datasets.Dataset.from_pandas(frame, preserve_index=False)
        except Exception:
            mixed = _nested_among_others(frame)  # Arrow's own error names the column only in its text
            if mixed is None:
                raise
            raise mixed from None
    except MixedColumn:
        raise
    except Exception as exc:  # a malformed file is bad input, not a crash
        raise SpecError(source, "data.path", f"cannot read {path.name} as {kind}: {_reason(exc)}") from None


class MixedColumn(Exception):
    """A column that holds a list or a mapping in some rows and something else in others, which Arrow (one type
    per column) cannot read: the caller names the column's key, which it knows (sources.load_raw)."""

    def __init__(self, column: str, row: int, value: object) -> None:
        super().__init__(column, row, value)
        self.column, self.row, self.value = column, row, value


def _nested_among_others(frame) -> MixedColumn | None:
    """The first list or mapping (its column and row, from 1) in a column whose other rows hold another kind of value
    (text, a number; a missing value is none), or None."""
    for column in frame.columns:
        values = list(frame[column])
        row = _first_nested_among_others(values)
        if row is not None:
            return MixedColumn(str(column), row + 1, values[row])
    return None


def _first_nested_among_others(values: list) -> int | None:
    """The index of the first list or mapping among values that also hold another kind of value (text, a number; a
    missing value is none), or None."""
    nested = [isinstance(v, (list, dict)) for v in values]
    if any(nested) and not all(n or _missing(v) for n, v in zip(nested, values, strict=True)):
        return nested.index(True)
    return None


def named_twice(path: Path, columns) -> str | None:
    """The first of `columns` (the ones the task reads) that a CSV's header names twice: pandas reads the second
    `text` as `text.1`, silently, and the study would train on the first. A name the task does not read may repeat."""
    if READERS.get(path.suffix.lower()) != "csv":
        return None
    import pandas as pd

    header = pd.read_csv(path, dtype=str, keep_default_na=False, header=None, nrows=1).iloc[0].tolist()
    return next((name for i, name in enumerate(header) if name in columns and name in header[:i]), None)


def _reason(exc: Exception) -> str:
    """An exception's first line, cut to 200 characters (its type's name when it says nothing)."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def without_pandas_index(ds: datasets.Dataset) -> datasets.Dataset:
    """The rows without the columns of a pandas index (`__index_level_0__`): row numbers, not data, so
    never listed among a split's columns. A named index level is the user's column and stays."""
    index = [name for name in ds.column_names if PANDAS_INDEX.fullmatch(name)]
    return ds.remove_columns(index) if index else ds


def _one_type_per_column(frame, used: frozenset[str]):
    """A JSON column whose values mix scalar types (an id that is 1 in one row, "id-2" in the next) as text,
    as a CSV's cells are read: Arrow holds one type per column. So is one the task does not read (not in `used`)
    that holds a list or a mapping in some rows only (JSON text of those): a metadata column cannot make the file
    unreadable. One the task reads is left to fail Arrow's conversion, and is named (`MixedColumn`)."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        types = {type(v) for v in frame[column] if v is not None}
        nested = types & {list, dict}
        if len(types) > 1 and not nested:
            frame[column] = [v if v is None else str(v) for v in frame[column]]
        elif nested and column not in used and _first_nested_among_others(list(frame[column])) is not None:
            frame[column] = [
                None if _missing(v) else json.dumps(v) if type(v) in nested else str(v) for v in frame[column]
            ]
    return frame


def _missing(value) -> bool:
    """A JSON row's missing value as pandas gives it: None, or NaN where the row lacks the key."""
    return value is None or (isinstance(value, float) and value != value)


def _saved(path: Path) -> bool:
    """A folder `datasets`' save_to_disk wrote: a DatasetDict's or a single Dataset's."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def local_splits(path: Path, source) -> dict[str, Path] | datasets.DatasetDict:
    if path.is_dir() and _saved(path):  # a DatasetDict's splits; a single Dataset is the train split
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # a damaged folder (a state.json that is not JSON, a missing .arrow file)
            raise SpecError(
                source, "data.path", f"cannot read {path} as a save_to_disk folder: {_reason(exc)}"
            ) from None
        return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({"train": loaded})
    if path.is_file():
        if path.suffix.lower() not in READERS:
            raise SpecError(source, "data.path", f"{path.name}: unsupported file; allowed: {', '.join(READERS)}")
        return {"train": path}
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in READERS)
    if not files:
        raise SpecError(source, "data.path", f"{path} holds no {', '.join(READERS)} file (one file per split)")
    splits: dict[str, Path] = {}
    for p in files:
        if p.stem in splits:
            raise SpecError(source, "data.path", f"two files for split {p.stem!r} in {path}")
        splits[p.stem] = p
    return splits


def hub_splits(name: str, source) -> datasets.DatasetDict:
    looks_local = name.startswith((".", "/", "~")) or Path(name).suffix.lower() in READERS
    if looks_local:
        raise SpecError(source, "data.path", f"no such file or folder: {name}")
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # offline, unknown id, private: one line, not a traceback
        raise SpecError(
            source,
            "data.path",
            f"{name!r} is not a local file or folder, and the hub could not load it: {_reason(exc)}",
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded
