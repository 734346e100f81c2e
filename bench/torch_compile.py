"""What `train.torch_compile: true` does to a classifier's training steps on this machine: all-MiniLM-L6-v2
on real Banking77 batches, each a fresh process, compiled as Trainer compiles (`torch.compile` with
inductor, its default mode and dynamic shapes) against eager, the two sides alternated over --repeats:

  - "first model": the seconds of the first pass over the batches, compile included, on an empty
    inductor cache (a worker's first trial);
  - "second model": the same for a fresh copy of the model in the same process (the worker's next trial:
    dynamo compiles again, its caches warm);
  - "steady": a later pass of the second model (every step after the compiles);
  - how far the compiled side's weights end from eager's after the same steps from the same weights and
    the same dropout seed (0: bit for bit).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/torch_compile.py
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common

SIDES = ("eager", "compiled")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=common.ROOT.parent / "shared" / "data" / "banking77" / "train.csv")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--batches", type=int, default=20, help="random batches per batch size (one pass)")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per side, alternated")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child's side
    p.add_argument("--out", type=Path, default=common.RESULTS / "torch_compile.json")
    return p.parse_args(argv)


def child(opts) -> dict:
    """One side in this process: its passes' seconds per batch size and its weights after the first model's pass."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.set_num_threads(opts.threads)
    path, tokenizer, table, names = common.minilm_and_banking77(opts.data)
    rng = random.Random(0)
    batches = [
        common.labelled_batch(tokenizer, rng.sample(table, size), names)
        for size in opts.batch_sizes
        for _ in range(opts.batches)
    ]
    start = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))

    def one_pass(model, opt) -> float:
        t = time.perf_counter()
        for batch in batches:
            model(**batch).loss.backward()
            opt.step()
            opt.zero_grad()
        return time.perf_counter() - t

    seconds, end = {}, None
    for which in ("first model", "second model"):
        model = copy.deepcopy(start).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        step = torch.compile(model) if opts.side == "compiled" else model
        torch.manual_seed(0)  # the same dropout masks on both sides
        seconds[which] = one_pass(step, opt)
        if end is None:
            end = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    seconds["steady"] = one_pass(step, opt)
    return {"seconds": seconds, "weights": end}


def main(argv=None) -> None:
    opts = parse_args(argv)
    if opts.side:
        print(json.dumps(child(opts)))
        return
    runs = {side: [] for side in SIDES}
    ends = {}
    for repeat in range(opts.repeats):
        for side in SIDES if repeat % 2 == 0 else reversed(SIDES):
            with tempfile.TemporaryDirectory(prefix="hpsearch-bench-compile-") as cache:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": cache}
                cmd = [sys.executable, __file__, "--side", side, *(argv if argv is not None else sys.argv[1:])]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            runs[side].append(result["seconds"])
            ends[side] = result["weights"]
            print(side, {k: round(v, 1) for k, v in result["seconds"].items()}, flush=True)
    steps = len(opts.batch_sizes) * opts.batches
    median = {side: {k: statistics.median(r[k] for r in runs[side]) for k in runs[side][0]} for side in SIDES}
    off = max(abs(a - b) for a, b in zip(ends["compiled"], ends["eager"], strict=True))
    lines = [
        f"| pass ({steps} steps, batch sizes {' and '.join(map(str, opts.batch_sizes))}) | eager (s) | compiled (s) "
        "| compiled / eager |",
        "|---|---:|---:|---:|",
    ]
    for part in median["eager"]:
        e, c = median["eager"][part], median["compiled"][part]
        lines.append(f"| {part} | {e:.1f} | {c:.1f} | {c / e:.2f} |")
    lines.append(f"\nweights after the first pass, compiled against eager: max abs difference {off:.1e}")
    text = "\n".join(lines)
    print(text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(
        json.dumps(
            {"command": " ".join(sys.argv), "runs": runs, "median": median, "weights_max_abs": off, "table": text},
            indent=1,
        )
    )
    print(f"\nwrote {opts.out}")


if __name__ == "__main__":
    main()
