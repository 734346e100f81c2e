"""A real hpsearch search on the Banking77 subset of bench/curves.py, then its confirmation over seeds, against
the recorded grid (--grid, bench/data/curves-classification.json by default: every config of the grid trained
to its end; bench/data/curves-causal-lm.json for the causal-lm grid's small decoder).

It runs what a user runs, as whole commands on real training (no lookup table):

  1. `hpsearch run`: TPE (seed --sampler-seed, 4 startup trials) with a new study's default pruner and
     evaluations, --n-trials trials, over learning_rate log [the grid's lowest, highest] x
     per_device_train_batch_size {16, 32} x optim {adamw_torch, adafactor}, 2 epochs, on the same 1,000
     train / 400 test rows as the grid (classification: all-MiniLM-L6-v2, accuracy; causal-lm: the same
     decoder built from a config as the grid's, eval loss).
  2. `hpsearch confirm --top-k K --seeds S`: the search's K best configs trained again with S new seeds.

Reported: the training samples the search spent and when its best first reached the grid's best minus one
standard error, beside the grid's; the search's final best beside the grid's; each confirmed config's mean
and standard deviation, whether the winner changed, and the confirmation's cost as a share of the search's
(training samples and device-seconds). Samples are exact and do not depend on the machine's load;
device-seconds do.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/real_search.py
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/real_search.py \
        --grid bench/data/curves-causal-lm.json --no-confirm --out bench/results/real_search-causal-lm.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as common
import curves
import search_efficiency as se
import yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "bench" / "data" / "curves-classification.json"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--grid", type=Path, default=GRID, help="the recorded grid (bench/curves.py) to compare with")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "banking77", help="Banking77 CSVs")
    p.add_argument("--n-trials", type=int, default=20, help="trials of the search")
    p.add_argument("--sampler-seed", type=int, default=0, help="TPE's seed")
    p.add_argument("--top-k", type=int, default=3, help="configs to confirm")
    p.add_argument("--seeds", type=int, default=3, help="new seeds per confirmed config")
    p.add_argument("--no-confirm", action="store_true", help="the search only (another sampler seed's row)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "real_search.json", help="results JSON")
    p.add_argument("--work", type=Path, help="work folder (default: a new temporary one, kept)")
    return p.parse_args(argv)


def study_file(grid: dict, data_dir: Path, work: Path, opts) -> Path:
    rates = grid["study"]["search"]["learning_rate"]
    if grid["task"] == "causal-lm":
        curves.build_decoder(work / "decoder", data_dir)  # seeded: the grid's decoder
        head = {**common.causal_lm_head("real-search", work / "decoder", data_dir, 64), "objective": {"metric": "loss"}}
    else:
        head = common.study_head("real-search", data_dir, 64)
    study = {
        **head,
        "search": {
            "learning_rate": {"type": "float", "low": min(rates), "high": max(rates), "log": True},
            "per_device_train_batch_size": [16, 32],
            "optim": ["adamw_torch", "adafactor"],
        },
        "train": dict(grid["study"]["train"]),
        "sampler": {"type": "tpe", "seed": opts.sampler_seed, "n_startup_trials": 4},
        "budget": {"n_trials": opts.n_trials},
        "confirm": {"top_k": opts.top_k, "seeds": opts.seeds},
        "storage": f"sqlite:///{work / 'study.db'}",
    }
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def hpsearch(*args: str, log: Path) -> None:
    with log.open("a") as out:
        cmd = [str(common.BIN / "hpsearch"), *args]
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def search_trace(trials, maximize: bool) -> list[tuple[int, float | None]]:
    """(samples spent so far, best completed value so far) after each trial, in number order."""
    spent, best, trace = 0, None, []
    better = max if maximize else min
    for t in sorted(trials, key=lambda t: t.number):
        curve = t.user_attrs.get("curve") or [{}]
        spent += curve[-1].get("samples", 0)
        if t.state.name == "COMPLETE":
            best = t.value if best is None else better(best, t.value)
        trace.append((spent, best))
    return trace


def main(argv=None) -> None:
    import optuna

    from hpsearch.results import confirmation

    opts = parse_args(argv)
    grid = json.loads(opts.grid.read_text())
    reference = se.grid_reference(grid)
    work = opts.work or Path(tempfile.mkdtemp(prefix="hpsearch-bench-real-"))
    work.mkdir(parents=True, exist_ok=True)
    subset = grid["subset"]
    common.write_subset(opts.data, work / "data", subset["train_rows"], subset["eval_rows"], 0)
    path = study_file(grid, work / "data", work, opts)
    log = work / "hpsearch.log"
    print(f"work folder: {work}; log: {log}", flush=True)
    hpsearch("run", str(path), "--quiet", log=log)
    if not opts.no_confirm:
        hpsearch("confirm", str(path), "--quiet", log=log)

    storage = f"sqlite:///{work / 'study.db'}"
    search = optuna.load_study(study_name="real-search", storage=storage)
    maximize = grid["direction"] == "maximize"
    trace = search_trace(search.trials, maximize)

    def cost(study, key):
        return sum(
            (t.user_attrs.get("curve") or [{}])[-1].get("samples", 0) if key == "samples" else t.user_attrs.get(key, 0)
            for t in study.trials
        )

    result = {
        "command": " ".join(["bench/real_search.py", *(argv or sys.argv[1:])]),
        "grid": reference,
        "search": {
            "samples": trace[-1][0],
            "share_of_grid": trace[-1][0] / reference["samples"],
            "reached_target_at": se.reached(trace, reference["target"], maximize),
            "best": search.best_value,
            "best_trial": search.best_trial.number,
            "best_params": search.best_params,
            "states": {s: sum(t.state.name == s for t in search.trials) for s in ("COMPLETE", "PRUNED", "FAIL")},
            "device_seconds": cost(search, "device_seconds"),
        },
    }
    if not opts.no_confirm:
        confirm = optuna.load_study(study_name=confirmation.study_name("real-search"), storage=storage)
        summary = confirmation.summarize(search, confirm)
        result["confirmation"] = {
            **summary.to_dict(),
            "samples": cost(confirm, "samples"),
            "device_seconds": cost(confirm, "device_seconds"),
        }
        result["confirmation"]["samples_share"] = result["confirmation"]["samples"] / result["search"]["samples"]
        result["confirmation"]["device_seconds_share"] = (
            result["confirmation"]["device_seconds"] / result["search"]["device_seconds"]
        )
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not opts.no_confirm:
        print(confirmation.table(summary, grid["objective_key"].removeprefix("eval_")))


if __name__ == "__main__":
    main()
