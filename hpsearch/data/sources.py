"""Load the study's data (local files or a hub dataset), subsample it, and cache tokenized splits.

Loading happens once per study, before any trial; so does tokenization, which is also cached on disk
under a key made of the tokenizer, max_length and the data's content fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from hpsearch.data import chats, formats
from hpsearch.errors import shown
from hpsearch.spec import DataSpec, SpecError
from hpsearch.spec.paths import cache_dir

CACHE_FORMAT = 1  # bump when what a task stores in the cache changes


@dataclass(frozen=True)
class RawData:
    """The train and eval splits, each with the task's columns only, under the task's names
    (classification: text, label; causal LM: prompt, completion, or messages)."""

    train: datasets.Dataset
    eval: datasets.Dataset
    fingerprint: str
    """sha256 of the rows both splits hold (after subsampling), the column names and label names."""

    def sample_texts(self, n: int = 200) -> list[str]:
        """Up to n strings of the train split's text, for checking a tokenizer against it."""
        out: list[str] = []
        for row in self.train.select(range(min(n, len(self.train)))):
            for name, value in row.items():
                if name == "messages":
                    out.extend(m["content"] for m in value)
                elif name != "label":
                    out.append(str(value))
        return out


def _stratified_order(ds: datasets.Dataset, seed: int, label_column: str | None) -> np.ndarray:
    """Row indices in a seeded order whose every prefix is label-stratified: each label keeps its
    share, and at least one row while the prefix allows, so no small sample loses a class.
    Without a label column (generation tasks), a plain seeded order."""
    order = np.random.default_rng(seed).permutation(len(ds))
    if label_column is None:
        return order
    labels = np.asarray([str(x) for x in ds[label_column]], dtype=object)[order]
    counts: dict[str, int] = {}
    seen: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    rank = np.empty(len(order))
    for i, label in enumerate(labels):
        rank[i] = seen.get(label, 0) / counts[label]  # k-th row of its label -> k / count
        seen[label] = seen.get(label, 0) + 1
    return order[np.argsort(rank, kind="stable")]


def _subsample(ds: datasets.Dataset, n: int | None, seed: int, label_column: str | None) -> datasets.Dataset:
    if n is None or n >= len(ds):
        return ds
    return ds.select(np.sort(_stratified_order(ds, seed, label_column)[:n]))


def _hold_out(ds: datasets.Dataset, fraction: float, seed: int, label_column: str | None):
    """(train, eval): a seeded, label-stratified fraction of the rows held out for evaluation."""
    order = _stratified_order(ds, seed, label_column)
    n_eval = max(1, round(len(ds) * fraction))
    # The order's tail: every label's first rows stay in train, so no label exists only in eval.
    # Indices as an array, not a list: `datasets` pickles a list for its fingerprint, 1 to 2 s per 100,000 rows.
    return ds.select(np.sort(order[:-n_eval])), ds.select(np.sort(order[-n_eval:]))


def _labels_as_text(ds: datasets.Dataset, column: str) -> list[str]:
    """Each row's label as text: a ClassLabel's name; a whole float as an integer (2.0 is "2", as in a
    column that also holds 2)."""
    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, datasets.ClassLabel):
        return [feature.int2str(v) for v in values]
    return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]


# What follows `_in_row` in the refusal of a list or a mapping, by the task's name of the column (else a text
# column's, ", not text"); a chat column's is for a file that holds chats in two forms (`_mixed`).
_RULES = {
    "label": "; one label per row: multi-label classification is not supported",
    "messages": f" and other rows do not: give every row in one form; {chats.RULE}",
}


def _check_labels(ds: datasets.Dataset, column: str, split: str, source) -> None:
    """Every row of the split (as subsampled) has a label; one label a row is `_check_plain`'s."""
    values = ds[column]
    missing = sum(
        v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()) for v in values
    )
    if missing:
        raise SpecError(source, "data.label_column", f"{missing} row(s) of split {split!r} have no {column!r}")


def _in_row(row: int, split: str, file: str | None, column: str, value) -> str:
    """`row 2 of split 'train' (train.jsonl) has a list in column 'text' (['x'])`: where a value is, as the errors
    about one row of the data say it."""
    where = f"split {split!r}" + (f" ({file})" if file else "")
    return f"row {row} of {where} has a {type(value).__name__} in column {shown(column)} ({shown(value)})"


def _check_plain(ds: datasets.Dataset, columns: dict[str, str], split: str, source, file: str | None) -> None:
    """A text column holds text (a number counts as its digits): a list or a mapping was trained on as its repr; a
    label column one label a row. Checked on the split as read (a column of lists is lists in every row), so that
    the row is the file's."""
    for name, column in columns.items():
        if name == "messages":  # chats.checked's
            continue
        if isinstance(ds.features.get(column), datasets.Value | datasets.ClassLabel | None):
            continue  # an Arrow column holds one type: text, or a number read as its digits; no row to scan
        row = next((i for i, v in enumerate(ds[column], start=1) if isinstance(v, (list, dict))), None)
        if row is not None:
            said = _in_row(row, split, file, column, ds[row - 1][column])
            raise SpecError(source, f"data.{name}_column", said + _RULES.get(name, ", not text"))


def _mixed(mixed: formats.MixedColumn, columns: dict[str, str], split: str, file: Path, source) -> SpecError:
    """A file Arrow cannot read, as a column the task reads holds lists in only some rows (one it does not read is
    read as text): refused at that column's key (data.text_column) as its own check says it."""
    name = next(n for n, c in columns.items() if c == mixed.column)
    said = _in_row(mixed.row, split, file.name, mixed.column, mixed.value)
    return SpecError(source, f"data.{name}_column", said + _RULES.get(name, ", not text"))


def _nothing_to_learn(ds: datasets.Dataset, name: str) -> bool:
    """No row of the split has a token to learn (and evaluate the loss on): a generation task's target."""
    if name == "messages":
        return not any(m["role"] == "assistant" and m["content"].strip() for row in ds[name] for m in row)
    return name in ("completion", "target") and not any(text.strip() for text in ds[name])


def _plain(ds: datasets.Dataset, columns: dict[str, str]) -> datasets.Dataset:
    """The task's columns under the task's names, as text: a label as `_labels_as_text` reads it, a chat
    as a list of {role, content} (`chats.message`)."""
    kept = {}
    for name, column in columns.items():
        if name == "label":
            kept[name] = _labels_as_text(ds, column)
        elif name == "messages":
            kept[name] = [[chats.message(m) for m in row] for row in ds[column]]
        else:
            kept[name] = ["" if t is None else str(t) for t in ds[column]]
    return datasets.Dataset.from_dict(kept)


def load_raw(spec: DataSpec, source, columns: dict[str, str] | None = None) -> RawData:
    """Read the two splits, check columns and labels, subsample; raises SpecError on bad input.

    `columns` maps the task's names to the data's columns (default: text and label, from
    `data.text_column` and `data.label_column`); a `label` column makes subsampling stratified.
    """
    columns = columns or {"text": spec.text_column, "label": spec.label_column}
    label_column = columns.get("label")
    local = Path(spec.path)
    if local.exists():
        found = formats.local_splits(local, source)
    else:
        found = formats.hub_splits(spec.path, source)
    names = ", ".join(found) or "none"
    if spec.train_split not in found:
        raise SpecError(
            source, "data.train_split", f"no split {shown(spec.train_split)} in {spec.path}; splits: {names}"
        )
    if spec.eval_split is not None and spec.eval_split not in found:
        raise SpecError(
            source,
            "data.eval_split",
            f"no split {shown(spec.eval_split)} in {spec.path}; splits: {names}; name one with data.eval_split, "
            "or hold part of train out for evaluation with data.eval_fraction",
        )

    used = frozenset(columns.values())

    def read(split: str) -> datasets.Dataset:
        file = found[split]
        try:
            ds = formats.without_pandas_index(formats.read_file(file, source, used) if isinstance(file, Path) else file)
        except formats.MixedColumn as mixed:
            raise _mixed(mixed, columns, split, file, source) from None
        twice = formats.named_twice(file, used) if isinstance(file, Path) else None
        if twice is not None:
            raise SpecError(
                source, "data.path", f"{file.name}: column {shown(twice)} is named twice in its header; name it once"
            )
        for name, column in columns.items():
            if column not in ds.column_names:
                raise SpecError(
                    source,
                    f"data.{name}_column",
                    f"no column {shown(column)} in split {split!r}; columns: {', '.join(map(repr, ds.column_names))}",
                )
        named = file.name if isinstance(file, Path) else None
        if "messages" in columns:
            ds = chats.checked(ds, columns["messages"], split, source, named)
        _check_plain(ds, columns, split, source, named)
        return ds

    train = read(spec.train_split)
    if spec.eval_fraction is not None:
        train, evaluation = _hold_out(train, spec.eval_fraction, spec.seed, label_column)
        eval_name = f"{spec.train_split} (held out {spec.eval_fraction:g})"
    else:
        evaluation = read(spec.eval_split)
        eval_name = spec.eval_split
    train = _subsample(train, spec.max_train_samples, spec.seed, label_column)
    evaluation = _subsample(evaluation, spec.max_eval_samples, spec.seed, label_column)
    splits = ((spec.train_split, train), (eval_name, evaluation))
    for split_name, ds in splits:
        if label_column is not None:
            _check_labels(ds, label_column, split_name, source)
    train, evaluation = _plain(train, columns), _plain(evaluation, columns)
    if len(train) == 0 or len(evaluation) == 0:
        raise SpecError(source, "data", f"empty split: {len(train)} train and {len(evaluation)} eval rows")
    for split_name, ds in ((spec.train_split, train), (eval_name, evaluation)):
        for name, column in columns.items():
            if not _nothing_to_learn(ds, name):
                continue
            said = "has an assistant turn with text" if name == "messages" else f"has a non-empty {column!r}"
            raise SpecError(
                source, f"data.{name}_column", f"no row of split {split_name!r} {said}: nothing to learn or evaluate"
            )
    digest = hashlib.sha256()
    for ds in (train, evaluation):
        for row in ds:  # classification rows hash as before: text, then label
            cells = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in row.values()]
            digest.update(("\x1f".join(cells) + "\x1e").encode())
        digest.update(b"\x1d")
    return RawData(train=train, eval=evaluation, fingerprint=digest.hexdigest()[:16])


def tokenizer_fingerprint(tokenizer) -> str:
    """What decides the token ids: vocabulary, normalizer, pre-tokenizer, special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        text = f"{tokenizer.name_or_path}:{len(tokenizer)}"
    else:
        state = json.loads(backend.to_str())
        # Calling the tokenizer with truncation/padding rewrites these two; they do not change the ids.
        state.pop("truncation", None)
        state.pop("padding", None)
        text = json.dumps(state, sort_keys=True)
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{text}".encode()).hexdigest()[:16]


def cached(key_parts: dict, build: Callable[[], datasets.DatasetDict]) -> datasets.DatasetDict:
    """Return build()'s result, stored under a key of `key_parts`; built once, then loaded."""
    import tokenizers
    import transformers

    # The library versions are part of the key: a new tokenizer release may encode differently.
    versions = {"format": CACHE_FORMAT, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
    key_parts = {**key_parts, **versions}
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:20]
    target = cache_dir() / "tokenized" / key
    if (target / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(target))
    result = build()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: a concurrent or interrupted build never leaves half a cache.
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        result.save_to_disk(str(scratch))
        (scratch / "key.json").write_text(json.dumps(key_parts, sort_keys=True, indent=1))
        scratch.rename(target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (target / "dataset_dict.json").exists():
            raise
    return datasets.load_from_disk(str(target))
