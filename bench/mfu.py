"""Model FLOPs utilisation (MFU) of one hpsearch trial of a ~0.5B decoder: achieved training FLOP/s
against the device's bf16 peak.

A decoder shaped like Qwen2.5-0.5B (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864, vocabulary
151,936, tied embeddings) is built from a config with random weights (throughput does not depend on the
weights, and the GPU machines cannot reach the hub); `--model PATH` takes a real local model instead. It
is fine-tuned by the real CLI, `hpsearch run STUDY --quiet`, one fixed config, causal-lm on Banking77
(query -> intent name) with `data.packing: true`, so every sample is exactly --max-length tokens.
Mixed precision is hpsearch's own choice for the device (bf16 on a GPU that has it).

FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): 6 x (weights of every Linear layer,
the LM head included, embedding lookups excluded) + 12 x layers x hidden x sequence length (attention).
Achieved = FLOPs per token x train tokens/s, where tokens/s = the trial's `train_samples_per_second`
x --max-length. MFU = achieved / peak; peak comes from --peak-tflops or a table of known GPUs (dense
bf16, no sparsity). On a CPU there is no peak in the table: the script prints the achieved TFLOP/s.

    # on a GPU machine (about 3 minutes on an H100-class GPU)
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/mfu.py
    # plumbing check on a CPU (a 2-layer model of the same shape family; numbers meaningless)
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/mfu.py --preset tiny \
        --max-steps 4 --max-length 128 --batch-size 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-mfu"
# Dense bf16 peak TFLOP/s (vendor datasheets, without sparsity), matched on the CUDA device name.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}
# Decoder shapes (Qwen2 architecture) built from a config.
PRESETS = {
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 8192,
        "tie_word_embeddings": True,
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77",
        help="folder with train.csv and test.csv (columns text, category)",
    )
    p.add_argument("--train-samples", type=int, default=10000, help="rows of train.csv to pack into blocks")
    p.add_argument("--eval-samples", type=int, default=64, help="rows of test.csv for the one final evaluation")
    p.add_argument("--preset", choices=sorted(PRESETS), default="qwen2.5-0.5b", help="decoder shape (from a config)")
    p.add_argument("--model", type=Path, default=None, help="a local causal LM folder instead of --preset")
    p.add_argument("--max-length", type=int, default=1024, help="tokens per packed sample (sequence length)")
    p.add_argument("--batch-size", type=int, default=8, help="per_device_train_batch_size")
    p.add_argument("--max-steps", type=int, default=60, help="optimizer steps of the trial")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: table)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the run (CPU)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (model, study, database, log)")
    p.add_argument("--out", type=Path, default=common.RESULTS / "mfu.json", help="where to write the JSON results")
    return p.parse_args(argv)


def build_model(folder: Path, data_dir: Path, preset: dict, max_length: int) -> None:
    """A Qwen2-shaped decoder with random weights, and a BPE tokenizer trained on the data (its few
    thousand ids index the first rows of the full-size vocabulary, so the LM head costs what it would)."""
    import pandas as pd
    from transformers import Qwen2Config, Qwen2ForCausalLM

    texts = pd.read_csv(data_dir / "train.csv")["text"].astype(str).tolist()
    tokenizer = common.bpe_tokenizer(texts, ["<|endoftext|>"], eos_token="<|endoftext|>")
    end = tokenizer.eos_token_id
    config = Qwen2Config(**preset, max_position_embeddings=max(max_length, 2048), bos_token_id=end, eos_token_id=end)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def flops_per_token(model_path: Path, seq_len: int) -> tuple[float, int, int]:
    """PaLM's training FLOPs per token, the Linear weights counted, and all parameters."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):  # shapes only: nothing allocated
        model = AutoModelForCausalLM.from_config(config)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    total = sum(p.numel() for p in model.parameters())
    attention = 12 * config.num_hidden_layers * config.hidden_size * seq_len
    return 6 * linear + attention, linear, total


def peak_tflops(device: str, given: float | None) -> float | None:
    if given is not None:
        return given
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name in device), None)


def run_trial(opts, work: Path, model: Path, data_dir: Path) -> dict:
    study = {
        **common.causal_lm_head(STUDY_NAME, model, data_dir, opts.max_length, packing=True),
        "search": {"learning_rate": [1e-4]},
        "train": {
            "max_steps": opts.max_steps,
            "per_device_train_batch_size": opts.batch_size,
            "per_device_eval_batch_size": opts.batch_size,
        },
        "evaluation": {"every": 1.0},  # one evaluation, at the end: the trial times training
        "sampler": {"type": "grid"},
        "pruner": {"type": "none"},
    }
    wall, trial = common.run_one_trial(opts, work, study, "mfu")
    a = trial.user_attrs
    args = a["training_arguments"]
    precision = "bf16" if args.get("bf16") else "fp16" if args.get("fp16") else "fp32"
    return {
        "wall_s": wall,
        "device": a["device"],
        "precision": precision,
        "train_samples_per_second": a["train_samples_per_second"],
        "train_seconds": a.get("train_seconds"),
        "peak_memory_mb": a["peak_memory_mb"],
        "steps": a.get("steps_trained"),
    }


def main(argv=None) -> None:
    opts = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-mfu-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, 0)
    model = opts.model
    if model is None:
        model = base / "model"
        build_model(model, data_dir, PRESETS[opts.preset], opts.max_length)
    work = base / "run"
    work.mkdir()
    print(f"data: {subset}; model: {model}; work folder: {base}", flush=True)
    per_token, linear, total = flops_per_token(model, opts.max_length)
    run = run_trial(opts, work, model, data_dir)
    tokens_per_s = run["train_samples_per_second"] * opts.max_length
    achieved = per_token * tokens_per_s / 1e12
    peak = peak_tflops(run["device"], opts.peak_tflops)
    mfu = None if peak is None else achieved / peak
    table = "\n".join(
        [
            f"{opts.model or opts.preset}: {total / 1e6:.0f} M parameters ({linear / 1e6:.0f} M in Linear layers), "
            f"{run['device']}, {run['precision']}, batch {opts.batch_size} x {opts.max_length} tokens, "
            f"{opts.max_steps} steps",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| train tokens/s | {tokens_per_s:,.0f} |",
            f"| training FLOPs per token (PaLM) | {per_token / 1e9:.2f} G |",
            f"| achieved TFLOP/s | {achieved:.3g} |",
            f"| peak bf16 TFLOP/s | {'n/a' if peak is None else f'{peak:.1f}'} |",
            f"| MFU | {'n/a' if mfu is None else f'{mfu:.1%}'} |",
            f"| peak memory MB | {run['peak_memory_mb']:.0f} |",
        ]
    )
    print("\n" + table)
    summary = {"tokens_per_s": tokens_per_s, "achieved_tflops": achieved, "peak_tflops": peak, "mfu": mfu}
    details = {"data": subset, "flops_per_token": per_token, "linear_parameters": linear, "parameters": total}
    opts.repeats = 1  # write_result records the options; one trial, no alternation
    common.write_result(opts, base, "mfu", details, [run], summary, table)


if __name__ == "__main__":
    main()
