"""Load the study's data (local files or a hub dataset), subsample it, and cache tokenized splits.

Loading happens once per study, before any trial; so does tokenization, which is also cached on disk
under a key made of the tokenizer, max_length and the data's content fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from hpsearch.spec import DataSpec, SpecError

CACHE_FORMAT = 1  # bump when what a task stores in the cache changes
READERS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


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
                    out.extend(str(m.get("content", "")) for m in value or [])
                elif name != "label":
                    out.append(str(value))
        return out


def cache_dir() -> Path:
    return Path(os.environ.get("HPSEARCH_CACHE", Path.home() / ".cache" / "hpsearch"))


def _read_file(path: Path, source) -> datasets.Dataset:
    import pandas as pd

    kind = READERS[path.suffix.lower()]
    try:
        if kind == "csv":  # as text: "007" stays "007" and an empty cell is "", not NaN
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=(kind == "jsonl"), dtype=False)
        return datasets.Dataset.from_pandas(frame, preserve_index=False)
    except Exception as exc:  # a malformed file is bad input, not a crash
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SpecError(source, "data.path", f"cannot read {path.name} as {kind}: {reason}") from None


def _local_splits(path: Path, source) -> dict[str, Path]:
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


def _hub_splits(name: str, source) -> datasets.DatasetDict:
    looks_local = name.startswith((".", "/", "~")) or Path(name).suffix.lower() in READERS
    if looks_local:
        raise SpecError(source, "data.path", f"no such file or folder: {name}")
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # offline, unknown id, private: one line, not a traceback
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SpecError(
            source, "data.path", f"{name!r} is not a local file or folder, and the hub could not load it: {reason}"
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


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
    return ds.select(sorted(_stratified_order(ds, seed, label_column)[:n].tolist()))


def _hold_out(ds: datasets.Dataset, fraction: float, seed: int, label_column: str | None):
    """(train, eval): a seeded, label-stratified fraction of the rows held out for evaluation."""
    order = _stratified_order(ds, seed, label_column)
    n_eval = max(1, round(len(ds) * fraction))
    # The order's tail: every label's first rows stay in train, so no label exists only in eval.
    return ds.select(sorted(order[:-n_eval].tolist())), ds.select(sorted(order[-n_eval:].tolist()))


def _labels_as_text(ds: datasets.Dataset, column: str) -> list[str]:
    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, datasets.ClassLabel):
        return [feature.int2str(v) for v in values]
    return [str(v) for v in values]


def load_raw(spec: DataSpec, source, columns: dict[str, str] | None = None) -> RawData:
    """Read the two splits, check columns and labels, subsample; raises SpecError on bad input.

    `columns` maps the task's names to the data's columns (default: text and label, from
    `data.text_column` and `data.label_column`); a `label` column makes subsampling stratified.
    """
    columns = columns or {"text": spec.text_column, "label": spec.label_column}
    label_column = columns.get("label")
    local = Path(spec.path)
    if local.exists():
        found = _local_splits(local, source)
    else:
        found = _hub_splits(spec.path, source)
    names = ", ".join(found) or "none"
    if spec.train_split not in found:
        raise SpecError(source, "data.train_split", f"no split {spec.train_split!r} in {spec.path}; splits: {names}")
    if spec.eval_split is not None and spec.eval_split not in found:
        raise SpecError(source, "data.eval_split", f"no split {spec.eval_split!r} in {spec.path}; splits: {names}")

    def read(split: str) -> datasets.Dataset:
        ds = found[split]
        return _read_file(ds, source) if isinstance(ds, Path) else ds

    train = read(spec.train_split)
    if spec.eval_fraction is not None:
        if label_column is not None and label_column not in train.column_names:
            raise SpecError(source, "data.label_column", f"no column {label_column!r} in split {spec.train_split!r}")
        train, evaluation = _hold_out(train, spec.eval_fraction, spec.seed, label_column)
        eval_name = f"{spec.train_split} (held out {spec.eval_fraction:g})"
    else:
        evaluation = read(spec.eval_split)
        eval_name = spec.eval_split
    for split_name, ds in ((spec.train_split, train), (eval_name, evaluation)):
        for name, column in columns.items():
            if column not in ds.column_names:
                raise SpecError(
                    source,
                    f"data.{name}_column",
                    f"no column {column!r} in split {split_name!r}; columns: {', '.join(ds.column_names)}",
                )
    train = _subsample(train, spec.max_train_samples, spec.seed, label_column)
    evaluation = _subsample(evaluation, spec.max_eval_samples, spec.seed, label_column)

    def plain(ds: datasets.Dataset) -> datasets.Dataset:
        kept = {}
        for name, column in columns.items():
            if name == "label":
                kept[name] = _labels_as_text(ds, column)
            elif name == "messages":  # a list of {role, content} per row, kept as it is
                kept[name] = [[{"role": str(m["role"]), "content": str(m["content"])} for m in v] for v in ds[column]]
            else:
                kept[name] = ["" if t is None else str(t) for t in ds[column]]
        return datasets.Dataset.from_dict(kept)

    if label_column is not None:
        for split_name, ds in ((spec.train_split, train), (eval_name, evaluation)):
            missing = sum(label is None or (isinstance(label, str) and not label.strip()) for label in ds[label_column])
            if missing:
                raise SpecError(
                    source, "data.label_column", f"{missing} row(s) of split {split_name!r} have no {label_column!r}"
                )
    try:
        train, evaluation = plain(train), plain(evaluation)
    except (KeyError, TypeError) as exc:
        raise SpecError(
            source, "data.messages_column", f"each row must be a list of {{role, content}} messages ({exc})"
        ) from None
    if len(train) == 0 or len(evaluation) == 0:
        raise SpecError(source, "data", f"empty split: {len(train)} train and {len(evaluation)} eval rows")
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
