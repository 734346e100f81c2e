"""Where a path in a study file points: a local file or folder made absolute, or a hub id left as is."""

from __future__ import annotations

import os
from pathlib import Path

from hpsearch.errors import SpecError, shown

# Extensions that make a value a local file rather than a hub id (the data readers' and friends').
FILE_SUFFIXES = {".csv", ".json", ".jsonl", ".parquet", ".tsv", ".txt", ".yaml", ".yml", ".arrow"}


def resolve_path(value: str, dotted: str, source: Path, from_cli: set[str]) -> str:
    """A local path made absolute, or a hub id (`org/name`) left as it is.

    Paths in a study file are relative to its folder; paths given with --set, to the cwd. A value
    is a hub id only if nothing of it exists locally and it has the hub's `org/name` shape. Hub
    names carry dots (Qwen/Qwen2.5-0.5B, meta-llama/Llama-3.1-8B): only a data file's extension
    makes a name a file.
    """
    given_on_cli = any(dotted == key or dotted.startswith(f"{key}.") for key in from_cli)
    base = Path.cwd() if given_on_cli else Path(source).parent
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    parts = Path(value).parts
    try:
        looks_local = (
            candidate.exists()
            or candidate.is_symlink()  # a link, if to nothing, is the user's: named as such, not looked up on the hub
            or value.startswith((".", "/", "~"))
            or len(parts) > 2
            or Path(value).suffix.lower() in FILE_SUFFIXES
            or (base / parts[0]).is_dir()
        )
        return str(candidate.resolve()) if looks_local else value
    except RuntimeError:  # Python < 3.13 (3.13 raises OSError ELOOP)
        raise SpecError(source, dotted, f"{value}: a loop of symbolic links, it leads to no file or folder") from None
    except OSError as exc:  # a name too long for the file system (ENAMETOOLONG), ...: not a path, nor a hub id
        given = f"{shown(value)} cannot be looked up ({exc.strerror})"
        raise SpecError(source, dotted, f"{given}; give a local path or a hub id (org/name)") from None


def cache_dir() -> Path:
    """hpsearch's cache (tokenized splits, the TrainingArguments table): `$HPSEARCH_CACHE`, else ~/.cache/hpsearch."""
    return Path(os.environ.get("HPSEARCH_CACHE", Path.home() / ".cache" / "hpsearch"))
