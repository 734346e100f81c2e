"""Study wall time with and without the tokenization cache.

The real CLI, `hpsearch run STUDY --quiet`, on a fresh SQLite study, twice per repeat: "cold" with an
empty cache folder (HPSEARCH_CACHE), so the command tokenizes the data, and "warm" with a cache
folder an earlier, untimed run of the same study filled, so it loads the tokenized splits. Every
other step is the same (imports, reading and checking the data, the model, the trials). The data is
Banking77 at full size by default (10,003 train / 3,080 test rows), all-MiniLM-L6-v2, K short
trials. What the cache saves is paid once per command: by each worker process, and again on every
resume. The order alternates over --repeats; medians.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/tokenization_cache.py --repeats 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-cache"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(p, train_samples=20000, eval_samples=5000, each="trial")
    p.add_argument("--trials", type=int, default=2, help="trials per command")
    p.add_argument(
        "--task",
        choices=("sequence-classification", "causal-lm"),
        default="sequence-classification",
        help="causal-lm: Banking77 as chat pairs (query -> intent) through a chat template, on a GPT-2 "
        "built from a config (bench/lora.py's)",
    )
    p.add_argument("--max-steps", type=int, default=10, help="optimizer steps per trial")
    common.add_run_args(p, first="cold", kept="study files, databases, caches, logs", out="tokenization_cache.json")
    return p.parse_args(argv)


def study_file(path: Path, data_dir: Path, opts, model: Path | None) -> None:
    import yaml

    head = common.study_head(STUDY_NAME, data_dir, opts.max_length)
    if model is not None:
        head["task"] = "causal-lm"
        head["model"] = {"name_or_path": str(model)}
        head["data"] = {**head["data"], "prompt_column": "text", "completion_column": "category"}
        del head["data"]["text_column"], head["data"]["label_column"]
        head["objective"] = {"metric": "loss"}
    study = {
        **head,
        "search": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}},
        "train": {"max_steps": opts.max_steps, "per_device_eval_batch_size": 256},
        "evaluation": {"every": 1.0},  # one evaluation, at the end
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "budget": {"n_trials": opts.trials},
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))


def run_side(opts, work: Path, data_dir: Path, warm_cache: Path | None, model: Path | None) -> dict:
    study = work / "study.yaml"
    study_file(study, data_dir, opts, model)
    if warm_cache is not None:
        shutil.copytree(warm_cache, work / "cache")
    return {"total_s": common.run_cli(opts, study, work)}


def main(argv=None) -> None:
    opts = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-cache-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    model = None
    if opts.task == "causal-lm":  # the chat template is rendered per row, in Python
        from lora import build_model

        model = base / "model"
        opts.layers, opts.width = 2, 128
        build_model(model, data_dir, opts)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        tokenizer.chat_template = CHAT_TEMPLATE
        tokenizer.save_pretrained(model)
    filler = base / "fill"
    filler.mkdir()
    print(f"data: {subset}; filling a cache (untimed) in {filler}", flush=True)
    run_side(opts, filler, data_dir, None, model)
    runs = common.alternate(
        opts,
        base,
        {
            "cold": lambda work: run_side(opts, work, data_dir, None, model),
            "warm": lambda work: run_side(opts, work, data_dir, filler / "cache", model),
        },
    )
    cold = statistics.median(r["cold"]["total_s"] for r in runs)
    warm = statistics.median(r["warm"]["total_s"] for r in runs)
    table = "\n".join(
        [
            f"{opts.task}: {subset['train_rows']} train / {subset['eval_rows']} eval rows, {opts.trials} trials of "
            f"{opts.max_steps} steps; median over {opts.repeats} repeat(s)",
            "",
            "| cache | wall s | ratio |",
            "|---|---:|---:|",
            f"| cold (tokenizes) | {cold:.1f} | 1.00 |",
            f"| warm (loads) | {warm:.1f} | {warm / cold:.2f} |",
            "",
            f"- saved per command: {cold - warm:.1f} s",
        ]
    )
    print("\n" + table)
    summary = {"cold_s": cold, "warm_s": warm, "saved_s": cold - warm}
    common.write_result(opts, base, "tokenization_cache", {"data": subset}, runs, summary, table)


if __name__ == "__main__":
    main()
