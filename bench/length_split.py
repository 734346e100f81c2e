"""Each training batch split by length into micro-batches, against the batch whole: the same rows, the
same order and (without dropout) the same gradient, less padding; side by side on real Banking77 batches.

A padded batch is as long as its longest row. `train_sampling_strategy: group_by_length` removes most of
the padding by changing which rows train together (bench/length_grouping.py: it moved the results).
This measures the lever that changes nothing a trial learns from: sort each batch's rows by length, split
them into K micro-batches, pad each to its own longest row, and sum their losses (weighted by rows) into
one backward pass. What it costs is one forward and backward pass more per micro-batch.

For each batch size, the same random batches (rows of the train split, tokenized to 64 tokens) are
trained through all-MiniLM-L6-v2's forward and backward passes whole (K = 1) and split (K = 2, 3, 4),
the sides interleaved over --repeats; reported: the median time against K = 1, the padded tokens, and
the largest difference between the split and whole gradients (dropout off; float rounding only).
Not wired into hpsearch: this is the measurement that decides whether it is worth it.

    .venv/bin/python bench/length_split.py
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import _common as common
import torch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=common.ROOT.parent / "shared" / "data" / "banking77" / "train.csv")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4], help="micro-batches per batch (1: whole)")
    p.add_argument("--batches", type=int, default=16, help="random batches per batch size")
    p.add_argument("--repeats", type=int, default=5, help="passes over the batches of each side, interleaved")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", type=Path, default=common.RESULTS / "length_split.json")
    return p.parse_args(argv)


def split(rows: list[list[int]], k: int) -> list[list[list[int]]]:
    """The rows sorted by length, cut into k micro-batches of (nearly) equal row counts."""
    rows = sorted(rows, key=len)
    return [rows[i * len(rows) // k : (i + 1) * len(rows) // k] for i in range(k)]


def padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def step(model, batch: list[tuple[list[int], int]], k: int, pad: int) -> None:
    """One forward and backward pass of the batch as k micro-batches (the batch's mean loss)."""
    labels_of = {id(ids): label for ids, label in batch}
    loss = 0.0
    for rows in split([ids for ids, _ in batch], k):
        ids, mask = padded(rows, pad)
        labels = torch.tensor([labels_of[id(r)] for r in rows])
        loss = loss + model(input_ids=ids, attention_mask=mask, labels=labels).loss * (len(rows) / len(batch))
    loss.backward()


def gradient(model, batch, k: int, pad: int) -> torch.Tensor:
    model.zero_grad()
    step(model, batch, k, pad)
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def main(argv=None) -> None:
    opts = parse_args(argv)
    torch.set_num_threads(opts.threads)
    from transformers import AutoModelForSequenceClassification

    path, tokenizer, table, names = common.minilm_and_banking77(opts.data)
    rows = [
        (tokenizer(row["text"], truncation=True, max_length=64)["input_ids"], names.index(row["category"]))
        for row in table
    ]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    pad, rng, results = tokenizer.pad_token_id, random.Random(0), []
    for size in opts.batch_sizes:
        batches = [rng.sample(rows, size) for _ in range(opts.batches)]
        model.eval()  # dropout off: the split's gradient is the whole batch's, to float rounding
        whole = gradient(model, batches[0], 1, pad)
        differences = {k: float((gradient(model, batches[0], k, pad) - whole).abs().max()) for k in opts.splits}
        model.train()
        times: dict[int, list[float]] = {k: [] for k in opts.splits}
        for repeat in range(opts.repeats):
            for k in opts.splits if repeat % 2 == 0 else reversed(opts.splits):
                start = time.perf_counter()
                for batch in batches:
                    model.zero_grad()
                    step(model, batch, k, pad)
                times[k].append(time.perf_counter() - start)
        base = statistics.median(times[1])
        for k in opts.splits:
            tokens = sum(len(c) * max(len(r) for r in c) for b in batches for c in split([ids for ids, _ in b], k))
            real = sum(len(ids) for b in batches for ids, _ in b)
            results.append(
                {
                    "batch_size": size,
                    "micro_batches": k,
                    "time_ratio": statistics.median(times[k]) / base,
                    "seconds": times[k],
                    "padded_tokens_per_real": tokens / real,
                    "max_gradient_difference": differences[k],
                    "max_gradient": float(whole.abs().max()),
                }
            )
    lines = [
        "| batch | micro-batches | time / whole batch | padded tokens per real one | max gradient difference |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['batch_size']} | {r['micro_batches']} | {r['time_ratio']:.2f} | {r['padded_tokens_per_real']:.2f} "
            f"| {r['max_gradient_difference']:.1e} (of {r['max_gradient']:.1e}) |"
        )
    table_text = "\n".join(lines)
    print(table_text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps({"command": " ".join(sys.argv), "results": results, "table": table_text}, indent=1))
    print(f"\nwrote {opts.out}")


if __name__ == "__main__":
    main()
