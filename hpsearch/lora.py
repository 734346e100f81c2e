"""LoRA through peft: wrap a trial's model in an adapter, and count what trains."""

from __future__ import annotations

from typing import Any


def wrap(model, settings: dict[str, Any], task_type: str):
    """The model with a LoRA adapter; only the adapter (and a new classification head) trains."""
    from peft import LoraConfig, get_peft_model

    modules = settings.get("target_modules")
    if modules and modules != "all-linear":
        modules = [m.strip() for m in modules.split(",") if m.strip()]
    config = LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=modules or None,
        task_type=task_type,
    )
    return get_peft_model(model, config)


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters of a model (with or without an adapter)."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return {"trainable_parameters": trainable, "total_parameters": total}
