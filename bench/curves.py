"""Record full learning curves of a grid of real configs, the ground truth that pruner and sampler
defaults are chosen on (bench/search_efficiency.py replays them).

Runs the real CLI, `hpsearch run STUDY --quiet`, on a grid sampler without a pruner, and writes every
trial's params, final objective, its curve on the progress axis (samples seen, step, epoch, objective,
its standard error, eval rows) and its training time to bench/data/curves-TASK.json (committed: the
benchmark data the defaults rest on).

  classification  all-MiniLM-L6-v2 on a seeded Banking77 subset (1,000 train / 400 test rows, 77 labels,
                  max_length 64), 2 epochs, an evaluation every 128 samples (8 steps at batch 16);
                  learning_rate {2e-5, 5.3e-5, 1.4e-4, 3.8e-4, 1e-3} (log-spaced over [2e-5, 1e-3]) x
                  per_device_train_batch_size {16, 32} x optim {adamw_torch, adafactor}: 20 configs.
  causal-lm       a GPT-2 built from a config (2 layers x 128, random weights, a BPE tokenizer trained
                  on the data) learning Banking77 as generation (the query -> its intent's name), same
                  subset, 2 epochs, every 128 samples; learning_rate {1e-4, 3e-4, 1e-3, 3e-3} x batch
                  {16, 32} x optim {adamw_torch, adafactor}: 16 configs, objective eval loss.

Run from the repository root (about 20 minutes for classification, 5 for causal-lm, on 2 cores):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/curves.py --task classification
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/curves.py --task causal-lm
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import _common as common

DATA = Path(__file__).resolve().parent / "data"  # committed: the replays read them
GRIDS = {
    "classification": {"learning_rate": [2e-5, 5.3e-5, 1.4e-4, 3.8e-4, 1e-3]},
    "causal-lm": {"learning_rate": [1e-4, 3e-4, 1e-3, 3e-3]},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--task", choices=sorted(GRIDS), default="classification", help="which grid to record")
    common.add_data_args(p, train_samples=1000, eval_samples=400, each="trial")
    p.set_defaults(epochs=2.0)
    p.add_argument("--every", type=float, default=128, help="evaluation.every (samples; up to 1: a fraction)")
    p.add_argument(
        "--subsample", type=int, default=None, help="evaluation.subsample (rows of intermediate evaluations)"
    )
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32], help="per_device_train_batch_size grid")
    p.add_argument("--optims", nargs="+", default=["adamw_torch", "adafactor"], help="optim grid")
    p.add_argument("--learning-rates", type=float, nargs="+", help="learning_rate grid (default: the task's)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the row subsampling")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS (default: inherit)")
    p.add_argument(
        "--train-sampling-strategy",
        help="train.train_sampling_strategy of every trial (default: unset, Trainer's random)",
    )
    p.add_argument("--length-split", type=int, help="data.length_split of every trial (default: the schema's)")
    p.add_argument("--train-seed", type=int, default=None, help="train.seed of every trial (default: the schema's)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (study, database, logs)")
    p.add_argument("--out", type=Path, help="where to write the JSON (default: bench/data/curves-TASK.json)")
    return p.parse_args(argv)


def study_file(opts, data_dir: Path, work: Path) -> dict:
    search = {
        "learning_rate": opts.learning_rates or GRIDS[opts.task]["learning_rate"],
        "per_device_train_batch_size": opts.batch_sizes,
        "optim": opts.optims,
    }
    common_keys = {
        "search": search,
        "train": {
            "num_train_epochs": opts.epochs,
            **({"train_sampling_strategy": opts.train_sampling_strategy} if opts.train_sampling_strategy else {}),
            **({"seed": opts.train_seed} if opts.train_seed is not None else {}),
        },
        "evaluation": {"every": opts.every, **({"subsample": opts.subsample} if opts.subsample else {})},
        "sampler": {"type": "grid", "seed": 0},
        "pruner": {"type": "none"},
        "storage": f"sqlite:///{work / 'curves.db'}",
    }
    if opts.task == "classification":
        study = {**common.study_head(f"curves-{opts.task}", data_dir, opts.max_length), **common_keys}
    else:
        model = work / "decoder"
        build_decoder(model, data_dir)
        head = common.causal_lm_head(f"curves-{opts.task}", model, data_dir, opts.max_length)
        study = {**head, "objective": {"metric": "loss"}, **common_keys}
    if opts.length_split is not None:
        study["data"]["length_split"] = opts.length_split
    return study


def build_decoder(folder: Path, data_dir: Path) -> None:
    """A 2-layer, 128-wide GPT-2 with random weights and a BPE tokenizer trained on the train split."""
    import pandas as pd
    from transformers import GPT2Config, GPT2LMHeadModel, set_seed

    set_seed(0)
    texts = pd.read_csv(data_dir / "train.csv")["text"].astype(str).tolist()
    tokenizer = common.bpe_tokenizer(texts, ["<|endoftext|>"], eos_token="<|endoftext|>")
    end = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=128, n_layer=2, n_head=2, bos_token_id=end, eos_token_id=end
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def slim(trial, key: str) -> dict:
    """What the replay needs of a trial: params, outcome, and the curve on the progress axis."""
    a = trial.user_attrs
    curve = [
        {
            "step": p["step"],
            "samples": p["samples"],
            "epoch": p["epoch"],
            key: p[key],
            f"{key}_se": p.get(f"{key}_se"),
            "eval_rows": p.get("eval_rows"),
        }
        for p in a["curve"]
    ]
    return {
        "number": trial.number,
        "params": trial.params,
        "state": trial.state.name,
        "value": trial.value,
        "intermediate_values": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
        "curve": curve,
        "train_seconds": a.get("train_seconds"),
        "wall_time_s": a.get("wall_time_s"),
        "error": a.get("error"),
    }


def main(argv=None) -> None:
    import optuna
    import yaml

    opts = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hpsearch-curves-"))
    data_dir = work / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    study = study_file(opts, data_dir, work)
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    wall = common.run_cli(opts, path, work)
    stored = optuna.load_study(study_name=study["name"], storage=study["storage"])
    key = "eval_" + study["objective"]["metric"]
    out = {
        "task": opts.task,
        "command": f"bench/curves.py --task {opts.task}",
        "date": __import__("datetime").date.today().isoformat(),
        "machine": f"{__import__('platform').platform()}, {__import__('os').cpu_count()} CPUs",
        "subset": subset,
        "study": {k: study[k] for k in ("search", "train", "evaluation", "objective")},
        "length_split": study["data"].get("length_split"),  # None: the schema's default
        "direction": stored.direction.name.lower(),
        "objective_key": key,
        "wall_s": round(wall, 1),
        "trials": [slim(t, key) for t in stored.trials],
    }
    target = opts.out or DATA / f"curves-{opts.task}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=1) + "\n")
    pick = max if out["direction"] == "maximize" else min
    best = pick(t["value"] for t in out["trials"] if t["value"] is not None)
    print(f"{len(out['trials'])} trials in {wall:.0f}s; best {key} {best:.4f}; wrote {target}")
    if not opts.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
