"""What scoring generated outputs at every evaluation costs: a seq2seq trial with `generation`
(ROUGE-1/2/L of greedy outputs for the first --samples eval rows, at every evaluation: --eval-steps)
against the same trial without it (`generation.metrics: []`, eval loss only).

A BART built from a config (random weights; --layers per side x --width, byte-level BPE tokenizer
trained here on the data) learns Banking77's intent name from the customer's query, through the real
CLI, `hpsearch run STUDY --quiet`, one fixed config per side, each in its own process. Figures: the
command's wall time and the trial's own `wall_time_s` and `train_seconds` (evaluation, and so
generation, happens inside Trainer.train()). The order alternates over --repeats; medians.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/generation.py --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-generation"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(p, train_samples=2000, eval_samples=200, each="side")
    p.add_argument("--layers", type=int, default=3, help="BART encoder and decoder layers (each)")
    p.add_argument("--width", type=int, default=256, help="BART d_model (heads: width // 64)")
    p.add_argument("--batch-size", type=int, default=16, help="per_device_train_batch_size")
    p.add_argument("--max-steps", type=int, default=300, help="optimizer steps per side")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="learning_rate of both sides")
    p.add_argument("--samples", type=int, default=32, help="generation.samples: eval rows generated for")
    p.add_argument("--max-new-tokens", type=int, default=16, help="generation.max_new_tokens")
    common.add_run_args(p, first="off", kept="model, study files, databases, logs", out="generation.json")
    return p.parse_args(argv)


def build_model(folder: Path, data_dir: Path, opts) -> None:
    import pandas as pd
    from transformers import BartConfig, BartForConditionalGeneration

    frame = pd.read_csv(data_dir / "train.csv")
    texts = frame["text"].astype(str).tolist() + frame["category"].astype(str).str.replace("_", " ").tolist()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer = common.bpe_tokenizer(
        texts, specials, wrap=True, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    bos, pad, eos = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id
    heads = max(1, opts.width // 64)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=opts.width,
        encoder_layers=opts.layers,
        decoder_layers=opts.layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * opts.width,
        decoder_ffn_dim=4 * opts.width,
        max_position_embeddings=128,
        bos_token_id=bos,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=eos,
        forced_eos_token_id=eos,
    )
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run_side(opts, work: Path, model: Path, data_dir: Path, side: str) -> dict:
    generation = {"metrics": ["rouge1", "rouge2", "rougeL"] if side == "on" else []}
    generation.update(samples=opts.samples, max_new_tokens=opts.max_new_tokens)
    study = {
        "name": STUDY_NAME,
        "task": "seq2seq",
        "model": {"name_or_path": str(model)},
        "data": {
            "path": str(data_dir),
            "source_column": "text",
            "target_column": "category",
            "train_split": "train",
            "eval_split": "test",
            "max_length": opts.max_length,
            "max_target_length": 16,
        },
        "generation": generation,
        "objective": {"metric": "loss"},
        "search": {"learning_rate": [opts.learning_rate]},
        "train": {
            "max_steps": opts.max_steps,
            "per_device_train_batch_size": opts.batch_size,
        },
        "evaluation": {"every": opts.eval_steps},
        "sampler": {"type": "grid"},
        "pruner": {"type": "none"},
    }
    total, trial = common.run_one_trial(opts, work, study, side)
    a = trial.user_attrs
    return {
        "total_s": total,
        "trial_s": a["wall_time_s"],
        "train_s": a["train_seconds"],
        "evaluations": len(a["curve"]),
        "rougeL": a["curve"][-1].get("eval_rougeL"),
        "examples": a.get("generated_examples"),  # what the model wrote: a longer output costs more
    }


def main(argv=None) -> None:
    opts = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-generation-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    model = base / "model"
    build_model(model, data_dir, opts)
    print(f"data: {subset}; model: {model}; work folder: {base}", flush=True)
    sides = ("off", "on")
    side_runs = {s: (lambda work, s=s: run_side(opts, work, model, data_dir, s)) for s in sides}
    runs = common.alternate(opts, base, side_runs)
    med = {s: {k: statistics.median(r[s][k] for r in runs) for k in ("total_s", "trial_s", "train_s")} for s in sides}
    off, on = med["off"], med["on"]
    evaluations = runs[0]["on"]["evaluations"]
    per_eval = (on["train_s"] - off["train_s"]) / evaluations
    table = "\n".join(
        [
            f"BART {opts.layers}+{opts.layers} x {opts.width} from a config, batch {opts.batch_size}, "
            f"{opts.max_steps} steps, {evaluations} evaluations, {opts.samples} rows generated for each "
            f"(at most {opts.max_new_tokens} tokens), median over {opts.repeats} repeat(s)",
            "",
            "| measure | generation off | generation on | on / off |",
            "|---|---:|---:|---:|",
            f"| command wall s | {off['total_s']:.1f} | {on['total_s']:.1f} | {on['total_s'] / off['total_s']:.2f} |",
            f"| trial s | {off['trial_s']:.1f} | {on['trial_s']:.1f} | {on['trial_s'] / off['trial_s']:.2f} |",
            f"| train s (evaluations inside) | {off['train_s']:.1f} | {on['train_s']:.1f} | "
            f"{on['train_s'] / off['train_s']:.2f} |",
            f"| added per evaluation | | {per_eval:.2f} s | |",
        ]
    )
    print("\n" + table)
    details = {"data": subset, "medians": med, "per_evaluation_s": per_eval}
    common.write_result(opts, base, "generation", details, runs, med, table)


if __name__ == "__main__":
    main()
