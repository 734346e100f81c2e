"""LoRA against full fine-tuning of a small causal LM: peak memory, samples per second, parameters.

A GPT-2 built from a config (random weights; --layers x --width, BPE tokenizer trained here on the
data) is fine-tuned on Banking77 as generation: the prompt is the customer's query, the completion
its intent's name. Both sides run the real CLI, `hpsearch run STUDY --quiet`, one fixed config, in
their own process (peak memory is per process): `finetune: full` against `finetune: lora` (r 8,
peft's default modules for GPT-2). Figures are the trial's own record: `train_samples_per_second`,
`peak_memory_mb` (peak resident memory on the CPU, peak allocated on a GPU), trainable parameters.
The order alternates over --repeats; medians.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/lora.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-lora"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(p, train_samples=2000, eval_samples=200, each="side")
    p.add_argument("--layers", type=int, default=6, help="GPT-2 layers")
    p.add_argument("--width", type=int, default=512, help="GPT-2 hidden size (heads: width // 64)")
    p.add_argument("--batch-size", type=int, default=16, help="per_device_train_batch_size")
    p.add_argument("--max-steps", type=int, default=60, help="optimizer steps per side")
    common.add_run_args(p, first="full", kept="model, study files, databases, logs", out="lora.json")
    return p.parse_args(argv)


def build_model(folder: Path, data_dir: Path, opts) -> None:
    import pandas as pd
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = pd.read_csv(data_dir / "train.csv")["text"].astype(str).tolist()
    tokenizer = common.bpe_tokenizer(texts, ["<|endoftext|>"], eos_token="<|endoftext|>")
    end = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=opts.width,
        n_layer=opts.layers,
        n_head=max(1, opts.width // 64),
        bos_token_id=end,
        eos_token_id=end,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run_side(opts, work: Path, model: Path, data_dir: Path, method: str) -> dict:
    study = {
        **common.causal_lm_head(STUDY_NAME, model, data_dir, opts.max_length),
        "search": {"learning_rate": [1e-4]},
        "train": {
            "max_steps": opts.max_steps,
            "per_device_train_batch_size": opts.batch_size,
        },
        "evaluation": {"every": opts.eval_steps},
        "finetune": method,
        "sampler": {"type": "grid"},
        "pruner": {"type": "none"},
    }
    if method == "lora":
        study["lora"] = {"r": 8, "alpha": 16, "dropout": 0.05}
    total, trial = common.run_one_trial(opts, work, study, method)
    a = trial.user_attrs
    return {
        "total_s": total,
        "samples_per_s": a["train_samples_per_second"],
        "peak_memory_mb": a["peak_memory_mb"],
        "trainable": a["trainable_parameters"],
        "total_parameters": a["total_parameters"],
        "eval_loss": trial.value,
    }


def main(argv=None) -> None:
    opts = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-lora-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    model = base / "model"
    build_model(model, data_dir, opts)
    print(f"data: {subset}; model: {model}; work folder: {base}", flush=True)
    runs = common.alternate(
        opts, base, {m: (lambda work, m=m: run_side(opts, work, model, data_dir, m)) for m in ("full", "lora")}
    )
    med = {m: {k: statistics.median(r[m][k] for r in runs) for k in runs[0][m]} for m in ("full", "lora")}
    full, lora = med["full"], med["lora"]
    table = "\n".join(
        [
            f"GPT-2 {opts.layers} x {opts.width} from a config, batch {opts.batch_size}, {opts.max_steps} steps, "
            f"median over {opts.repeats} repeat(s)",
            "",
            "| measure | full | LoRA (r 8) | LoRA / full |",
            "|---|---:|---:|---:|",
            f"| train samples/s | {full['samples_per_s']:.1f} | {lora['samples_per_s']:.1f} | "
            f"{lora['samples_per_s'] / full['samples_per_s']:.2f} |",
            f"| peak memory MB | {full['peak_memory_mb']:.0f} | {lora['peak_memory_mb']:.0f} | "
            f"{lora['peak_memory_mb'] / full['peak_memory_mb']:.2f} |",
            f"| trainable parameters | {full['trainable']:,.0f} | {lora['trainable']:,.0f} | "
            f"{lora['trainable'] / full['trainable']:.4f} |",
            f"| final eval loss | {full['eval_loss']:.3f} | {lora['eval_loss']:.3f} | |",
        ]
    )
    print("\n" + table)
    details = {"data": subset, "medians": med, "build": {"layers": opts.layers, "width": opts.width}}
    common.write_result(opts, base, "lora", details, runs, json.loads(json.dumps(med)), table)


if __name__ == "__main__":
    main()
