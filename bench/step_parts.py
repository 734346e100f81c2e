"""Where a training step's time goes (forward, backward, optimizer step), per optimizer implementation and
precision, side by side on real Banking77 batches through all-MiniLM-L6-v2.

A trial of the `hyperparameter_search` harness spends about a quarter of its time in the optimizer step
(profiled in BENCHMARKS.md): `optim: adamw_torch` is torch's AdamW with its default implementation, on a
CPU one update per parameter tensor; the word embeddings are half of MiniLM's 22.7M parameters. This
measures the implementations a study can name (`adamw_torch`, `adamw_torch_fused`, transformers'
`adafactor`; the optimizer is built as Trainer builds it, `Trainer.get_optimizer_cls_and_kwargs`), and
the forward pass under bf16 autocast (what `train.bf16: true` does), each against `adamw_torch` in fp32:

  - the median time of each part over --repeats passes over the same batches, the variants interleaved;
  - how far each variant's weights end from the reference's after one pass from the same weights, the
    same batches and the same dropout seed (0: bit for bit; anything else: another trajectory, whose
    size grows with the learning rate).

    .venv/bin/python bench/step_parts.py
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

import _common as common
import torch

# name -> (TrainingArguments overrides): the optimizer as Trainer builds it, and the forward's precision
VARIANTS = {
    "adamw_torch": {"optim": "adamw_torch"},
    "adamw_torch_fused": {"optim": "adamw_torch_fused"},
    "adafactor": {"optim": "adafactor"},
    "adamw_torch, bf16 autocast": {"optim": "adamw_torch", "bf16": True},
}
REFERENCE = "adamw_torch"  # what the others are measured against
ADAMW = ("adamw_torch", "adamw_torch_fused")  # one algorithm, two implementations: their weights compared


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=common.ROOT.parent / "shared" / "data" / "banking77" / "train.csv")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--batches", type=int, default=12, help="random batches per batch size (one pass)")
    p.add_argument("--repeats", type=int, default=3, help="passes of each variant, interleaved")
    p.add_argument("--learning-rates", type=float, nargs="+", default=[1.4e-4, 1e-3], help="for the weights' drift")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", type=Path, default=common.RESULTS / "step_parts.json")
    return p.parse_args(argv)


def optimizer(model, variant: str, learning_rate: float):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir="unused", learning_rate=learning_rate, weight_decay=0.01, use_cpu=True, **VARIANTS[variant]
    )
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls(model.parameters(), **kwargs), bool(args.bf16)


def one_pass(model, opt, bf16: bool, batches) -> dict[str, float]:
    """Train the batches once; the seconds spent in each part of the steps."""
    parts = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    for ids, mask, labels in batches:
        t0 = time.perf_counter()
        with precision:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        parts["forward"] += t1 - t0
        parts["backward"] += t2 - t1
        parts["optimizer"] += t3 - t2
    return parts


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def main(argv=None) -> None:
    opts = parse_args(argv)
    torch.set_num_threads(opts.threads)
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    path, tokenizer, table, names = common.minilm_and_banking77(opts.data)
    start = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    rng, results = random.Random(0), []
    for size in opts.batch_sizes:
        batches = []
        for _ in range(opts.batches):
            b = common.labelled_batch(tokenizer, rng.sample(table, size), names)
            batches.append((b["input_ids"], b["attention_mask"], b["labels"]))
        times: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for repeat in range(opts.repeats):
            for variant in VARIANTS if repeat % 2 == 0 else reversed(VARIANTS):
                model = copy.deepcopy(start).train()
                opt, bf16 = optimizer(model, variant, opts.learning_rates[0])
                one_pass(model, opt, bf16, batches[:2])  # warm-up: the optimizer's state, the kernels
                times[variant].append(one_pass(model, opt, bf16, batches))
        drift = {v: {} for v in VARIANTS}
        for lr in opts.learning_rates:
            ends = {}
            for variant in VARIANTS:
                model = copy.deepcopy(start).train()
                opt, bf16 = optimizer(model, variant, lr)
                torch.manual_seed(0)  # the same dropout masks for every variant
                one_pass(model, opt, bf16, batches)
                ends[variant] = weights(model)
            reference = ends[REFERENCE]
            moved = float((reference - weights(start)).abs().max())
            for variant in VARIANTS:
                if VARIANTS[variant]["optim"] not in ADAMW:
                    continue  # another optimizer: another trajectory by design
                drift[variant][str(lr)] = {"max": float((ends[variant] - reference).abs().max()), "update": moved}
        base = {part: statistics.median(t[part] for t in times[REFERENCE]) for part in times[REFERENCE][0]}
        for variant in VARIANTS:
            median = {part: statistics.median(t[part] for t in times[variant]) for part in base}
            results.append(
                {
                    "batch_size": size,
                    "variant": variant,
                    "ms_per_step": {part: 1000 * s / len(batches) for part, s in median.items()},
                    "step_ratio": sum(median.values()) / sum(base.values()),
                    "passes": times[variant],
                    "weights_vs_reference": drift[variant],
                }
            )
    lines = [
        "| batch | variant | forward (ms) | backward (ms) | optimizer (ms) | step / "
        f"{REFERENCE}'s | weights off {REFERENCE}'s after one pass, per lr (max abs; largest update) |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ms = r["ms_per_step"]
        off = (
            "; ".join(
                f"{lr}: " + ("identical" if d["max"] == 0 else f"{d['max']:.1e} ({d['update']:.1e})")
                for lr, d in r["weights_vs_reference"].items()
            )
            or "another optimizer"
        )
        lines.append(
            f"| {r['batch_size']} | {r['variant']} | {ms['forward']:.0f} | {ms['backward']:.0f} "
            f"| {ms['optimizer']:.0f} | {r['step_ratio']:.2f} | {off} |"
        )
    text = "\n".join(lines)
    print(text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps({"command": " ".join(sys.argv), "results": results, "table": text}, indent=1))
    print(f"\nwrote {opts.out}")


if __name__ == "__main__":
    main()
