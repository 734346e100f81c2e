"""Trials per hour against the number of workers: `hpsearch run --workers W`, side by side for each W.

Every side runs the real CLI, `hpsearch run STUDY --quiet --workers W`, on a fresh SQLite study into
which the same K fixed configs (learning_rate x per_device_train_batch_size) were enqueued, so every
side trains exactly the same trials: all-MiniLM-L6-v2 on a seeded Banking77 subset. With W workers
and no GPU, each worker's torch gets cores // W threads (`hpsearch.pool`); on a GPU machine each
worker gets one GPU. Timed as whole commands (process start, imports, data, every worker's startup);
trials per hour = K / wall. The order of the sides alternates over --repeats; medians.

Run from the repository root (results: bench/results/workers.json):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/workers.py --workers 1 2 --repeats 2

Smoke test (a couple of minutes on 2 cores):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/workers.py --train-samples 64 \
        --eval-samples 32 --learning-rates 1e-4 --batch-sizes 16 32 --no-warmup
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-workers"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(p, train_samples=400, eval_samples=100, each="trial")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="numbers of workers to compare")
    p.add_argument(
        "--learning-rates", type=float, nargs="+", default=[3e-5, 1e-4], help="learning rates of the configs"
    )
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64], help="per_device_train_batch_size values"
    )
    common.add_run_args(p, first="the first --workers value", kept="study files, databases, logs", out="workers.json")
    return p.parse_args(argv)


def run_side(opts, work: Path, data_dir: Path, params_list: list[dict], workers: int) -> dict:
    import optuna

    storage = f"sqlite:///{work / 'study.db'}"
    study_path = work / "study.yaml"
    common.fixed_configs_file(STUDY_NAME, study_path, data_dir, storage, opts, params_list)
    common.enqueue_configs(STUDY_NAME, storage, params_list)
    cmd = [str(common.BIN / "hpsearch"), "run", str(study_path), "--quiet", "--workers", str(workers)]
    total = common.timed(cmd, common.child_env(opts, work / "cache"), work / "hpsearch.log")
    trials = optuna.load_study(study_name=STUDY_NAME, storage=storage).get_trials()
    bad = [t.number for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    if bad or len(trials) != len(params_list):
        sys.exit(f"{workers} workers: {len(trials)} trials, not complete: {bad}; see {work / 'hpsearch.log'}")
    loop = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {
        "total_s": total,
        "loop_s": loop,
        "median_trial_s": statistics.median(t.duration.total_seconds() for t in trials),
        "workers_seen": len({t.user_attrs.get("worker") for t in trials}),
        "accuracy": {str(t.params): t.value for t in trials},
    }


def report(runs: list[dict], sides: list[str], n: int, repeats: int) -> tuple[dict, str]:
    med = {
        side: {k: statistics.median(r[side][k] for r in runs) for k in ("total_s", "loop_s", "median_trial_s")}
        for side in sides
    }
    base = med[sides[0]]
    lines = [
        f"{n} trials per side, median over {repeats} repeat(s); speed-up = trials/hour against {sides[0]}",
        "",
        "| workers | wall s | trials/hour | speed-up | trial loop s | median trial s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        m = med[side]
        lines.append(
            f"| {side.removeprefix('w')} | {m['total_s']:.1f} | {n / m['total_s'] * 3600:.0f} | "
            f"{base['total_s'] / m['total_s']:.2f}x | {m['loop_s']:.1f} | {m['median_trial_s']:.1f} |"
        )
    return med, "\n".join(lines)


def main(argv=None) -> None:
    opts = parse_args(argv)
    params_list = [
        {"learning_rate": lr, "per_device_train_batch_size": bs}
        for lr, bs in itertools.product(opts.learning_rates, opts.batch_sizes)
    ]
    n = len(params_list)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-workers-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    print(f"data: {subset}; configs: {n}; work folder: {base}", flush=True)
    sides = {f"w{w}": (lambda work, w=w: run_side(opts, work, data_dir, params_list, w)) for w in opts.workers}
    runs = common.alternate(opts, base, sides)
    summary, table = report(runs, list(sides), n, opts.repeats)
    print("\n" + table)
    common.write_result(opts, base, "workers", {"data": subset, "configs": params_list}, runs, summary, table)


if __name__ == "__main__":
    main()
