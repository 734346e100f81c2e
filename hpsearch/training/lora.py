"""LoRA through peft: wrap a trial's model in an adapter, and count what trains."""

from __future__ import annotations

from typing import Any

from hpsearch.results.record import TrialAttr


def wrap(model, settings: dict[str, Any], task_type: str):
    """The model with a LoRA adapter; only the adapter (and a new classification head) trains."""
    from peft import LoraConfig, get_peft_model

    modules = settings.get("target_modules")
    if modules != "all-linear":
        modules = module_names(modules)
    config = LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=modules or None,
        task_type=task_type,
    )
    return get_peft_model(model, config)


def module_names(modules: str | None) -> list[str]:
    """The module names of a `target_modules` setting (comma-separated); none for peft's default or all-linear."""
    if not modules or modules == "all-linear":
        return []
    return [m.strip() for m in modules.split(",") if m.strip()]


def wrappable_types() -> tuple[type, ...]:
    """The layer types peft's LoRA wraps (peft.tuners.lora.layer.dispatch_default; any other module a target
    name matches, a LayerNorm or a whole attention block, fails get_peft_model: "is not supported")."""
    import torch
    from transformers.pytorch_utils import Conv1D

    nn = torch.nn
    return (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, Conv1D, nn.MultiheadAttention)


def missing_targets(model, modules: str | None) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(the names of `modules` that match no module of `model`, as peft matches them: the whole name or its
    last dotted parts; those that match modules LoRA cannot wrap, with those modules' types; the names the
    model's layers LoRA can wrap end in, to suggest)."""
    kinds = wrappable_types()
    found = [(n, m) for n, m in model.named_modules() if n]
    missing, unwrappable = [], {}
    for target in module_names(modules):
        matched = [m for n, m in found if n == target or n.endswith(f".{target}")]
        if not matched:
            missing.append(target)
        elif others := sorted({type(m).__name__ for m in matched if not isinstance(m, kinds)}):
            unwrappable[target] = others
    layers = sorted({n.rsplit(".", 1)[-1] for n, m in found if isinstance(m, kinds)})
    return missing, unwrappable, layers


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters of a model (with or without an adapter)."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return {TrialAttr.TRAINABLE_PARAMETERS: trainable, TrialAttr.TOTAL_PARAMETERS: total}
