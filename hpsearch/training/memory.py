"""Memory and device facts a trial records (peak, held before and after, the device's name), and the
out-of-memory step down: half the micro-batch, twice the gradient accumulation."""

from __future__ import annotations

import gc
import resource
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hpsearch.results.record import TrialAttr


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets this process's peak resident set size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _process_memory_mb(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux): VmHWM (peak), VmRSS (now)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = _process_memory_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_in_use_mb(device: torch.device) -> float:
    """What the process holds now: tensors on the GPU, or the resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    now = _process_memory_mb("VmRSS")
    return now if now is not None else float("nan")


@contextmanager
def sweep_heap() -> Iterator[None]:
    """For a worker's run of trials: what is loaded before the first (the libraries, the tokenizer, the
    data; about 480,000 objects with transformers imported) is moved out of the cyclic collector's
    reach, so a full collection walks only what the trials made. One costs 0.25 s otherwise, and every
    trial runs two: Trainer's at the start of train() and ours after the trial (`free_memory`).
    Garbage already there is collected first; afterwards the objects go back (gc.unfreeze), so that a
    caller in the same process (the tests) collects them as before."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return str(device)


class OutOfMemory(RuntimeError):
    """Out of memory even at a per-device batch of 1: the trial fails with reason `oom`."""


def split_batch(arguments: dict[str, Any], record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """After an out-of-memory error: half the per-device batch, twice the gradient accumulation,
    so the effective batch the model sees stays the same, and half the eval batch; each step down is
    recorded."""
    batch = arguments["per_device_train_batch_size"]
    accumulation = arguments.get("gradient_accumulation_steps", 1)
    retries = record.setdefault(TrialAttr.OOM_RETRIES, [])
    eval_batch = arguments.get("per_device_eval_batch_size", 8)
    retries.append(
        {
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": accumulation,
            "per_device_eval_batch_size": eval_batch,
        }
    )
    if batch <= 1:
        raise OutOfMemory(f"oom: out of memory at per_device_train_batch_size=1: {str(exc).splitlines()[0][:200]}")
    return {
        **arguments,
        "per_device_train_batch_size": batch // 2,
        "gradient_accumulation_steps": accumulation * 2,
        # Evaluation (and generation) runs inside train() too, and may be what ran out: it halves as well.
        "per_device_eval_batch_size": max(eval_batch // 2, 1),
    }


def evaluate_fitting(trainer, dataset) -> dict[str, float]:
    """`trainer.evaluate(dataset)`, halving the eval batch each time it runs out of memory (the final
    evaluation on the whole split runs after training, outside the training's retry)."""
    while True:
        try:
            return trainer.evaluate(eval_dataset=dataset)
        except torch.OutOfMemoryError as exc:
            traceback.clear_frames(exc.__traceback__)
            free_memory()
            batch = trainer.args.per_device_eval_batch_size
            if batch <= 1:
                raise OutOfMemory(f"out of memory evaluating at a per-device eval batch of 1: {exc}") from None
            trainer.args.per_device_eval_batch_size = batch // 2
