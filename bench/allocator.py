"""Training steps on the CPU with glibc's default malloc against the heap kept (mallopt: no mapped blocks, the
heap's top never trimmed), side by side, MiniLM on real Banking77 batches.

glibc maps a block above its mmap threshold (at most 32 MB) afresh and unmaps it when freed, and trims the
heap's top, so a step's large tensors are page-faulted and zeroed by the kernel at every step. Each pass is
a fresh process (a mallopt call cannot restore glibc's adaptive default), the two settings alternating over
--repeats; every pass trains the same configs (optim x batch size, one --learning-rate, the optimizer as
Trainer builds it) for --steps steps from the same weights, batches and dropout seed, and reports:

  - seconds (wall and the process's CPU time) and minor page faults, per config: medians over the passes;
  - the peak resident set of the pass;
  - whether the trained weights are bit for bit the same under both settings.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/allocator.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as common

SETTINGS = ("glibc default", "heap kept")
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's malloc.h


def keep_heap() -> None:
    """No block mapped on its own, the heap's top kept: freed memory is reused, not faulted in again."""
    import ctypes

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        sys.exit("not glibc: nothing to compare")
    assert libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=common.ROOT.parent / "shared" / "data" / "banking77" / "train.csv")
    p.add_argument("--optims", nargs="+", default=["adamw_torch", "adafactor"], help="optim names, as Trainer's")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--steps", type=int, default=12, help="training steps per config and pass")
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=3, help="passes of each setting, alternating")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the passes (default: inherit)")
    p.add_argument("--out", type=Path, default=common.RESULTS / "allocator.json")
    p.add_argument("--pass", dest="one_pass", choices=SETTINGS, help="internal: run one pass and print its JSON")
    return p.parse_args(argv)


def one_pass(opts) -> dict:
    """Train every config once under this process's setting; seconds, page faults and a weights digest each."""
    import hashlib

    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
    from transformers.utils import logging

    if opts.one_pass == "heap kept":
        keep_heap()
    logging.set_verbosity_error()
    path, tokenizer, table, names = common.minilm_and_banking77(opts.data)
    out = {}
    for optim in opts.optims:
        for size in opts.batch_sizes:
            rng = random.Random(size)  # the same batches under both settings
            batches = [common.labelled_batch(tokenizer, rng.sample(table, size), names) for _ in range(opts.steps)]
            torch.manual_seed(0)  # the same head and dropout masks under both settings
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names)).train()
            args = TrainingArguments(output_dir="unused", learning_rate=opts.learning_rate, optim=optim, use_cpu=True)
            cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
            opt = cls(model.parameters(), **kwargs)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:  # Trainer's step: forward, backward, clip to max_grad_norm, step, zero_grad
                model(**batch).loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                opt.step()
                opt.zero_grad(set_to_none=True)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            digest = hashlib.sha256()
            for p in model.parameters():
                digest.update(p.detach().numpy().tobytes())
            weights = digest.hexdigest()
            out[f"{optim}/{size}"] = {"wall_s": wall, "cpu_s": cpu, "page_faults": faults, "weights": weights}
            del model, opt
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_pass(opts, setting: str) -> dict:
    cmd = [sys.executable, __file__, "--pass", setting, "--data", str(opts.data), "--steps", str(opts.steps)]
    cmd += ["--learning-rate", str(opts.learning_rate), "--optims", *opts.optims]
    cmd += ["--batch-sizes", *map(str, opts.batch_sizes)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if opts.threads:
        env["OMP_NUM_THREADS"] = str(opts.threads)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    opts = parse_args(argv)
    if opts.one_pass:
        print(json.dumps(one_pass(opts)))
        return
    passes: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for repeat in range(opts.repeats):
        for setting in SETTINGS if repeat % 2 == 0 else reversed(SETTINGS):
            passes[setting].append(run_pass(opts, setting))
            print(f"repeat {repeat + 1}/{opts.repeats}: {setting} done", flush=True)
    base, kept = passes[SETTINGS[0]], passes[SETTINGS[1]]

    def med(side, config, key):
        return statistics.median(p[config][key] for p in side)

    rows: list[dict] = []
    lines = [
        f"| config (optim / batch) | wall s, {SETTINGS[0]} | wall s, {SETTINGS[1]} | wall ratio | CPU-time ratio "
        "| page faults, default | page faults, kept | weights bit for bit the same |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    configs = [f"{o}/{b}" for o in opts.optims for b in opts.batch_sizes]
    for config in configs:
        same = {p[config]["weights"] for p in base} == {p[config]["weights"] for p in kept}
        row = {
            "config": config,
            "wall_ratio": med(kept, config, "wall_s") / med(base, config, "wall_s"),
            "cpu_ratio": med(kept, config, "cpu_s") / med(base, config, "cpu_s"),
            "page_faults": [med(base, config, "page_faults"), med(kept, config, "page_faults")],
            "same_weights": same,
        }
        rows.append(row)
        lines.append(
            f"| {config} | {med(base, config, 'wall_s'):.2f} | {med(kept, config, 'wall_s'):.2f} "
            f"| {row['wall_ratio']:.2f} | {row['cpu_ratio']:.2f} | {row['page_faults'][0]:,.0f} "
            f"| {row['page_faults'][1]:,.0f} | {'yes' if same else 'NO'} |"
        )
    peaks = [statistics.median(p["peak_rss_mb"] for p in side) for side in (base, kept)]
    lines.append("")
    lines.append(f"peak resident set of a pass (median): {peaks[0]:.0f} MB default, {peaks[1]:.0f} MB kept")
    text = "\n".join(lines)
    print(text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": " ".join(sys.argv), "passes": passes, "results": rows, "peak_rss_mb": peaks, "table": text}
    opts.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {opts.out}")


if __name__ == "__main__":
    main()
