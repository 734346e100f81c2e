"""Two checkouts of hpsearch on the same trials, side by side: what a change to hpsearch saves or costs per trial.

Both sides run the real CLI, `hpsearch run STUDY --quiet` of this repository's venv, on the same K fixed
configs as overhead.py (MiniLM on a Banking77 subset, enqueued into a fresh SQLite study, random sampler, no
pruner). The "before" side imports hpsearch from --before (a checkout of another revision, e.g. made with
`git worktree add /tmp/before REV`) through PYTHONPATH; the "after" side from this repository. The order
alternates over --repeats. Reported as medians over repeats, ratio = after / before: the whole command, the
trial loop (first trial's start to last trial's end) and the median of the per-config trial ratios; and
the largest difference between the two sides' final accuracies (a change that should leave the numbers
alone must show 0).

Run from the repository root (results: bench/results/revisions.json):

    git worktree add /tmp/before HEAD~1
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/revisions.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import _common as common
import overhead


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="a checkout of hpsearch (the folder holding hpsearch/)")
    common.add_data_args(p, train_samples=64, eval_samples=64, each="config")
    p.add_argument("--learning-rates", type=float, nargs="+", default=[3e-5, 1e-4, 3e-4, 1e-3], help="of the configs")
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[16, 32], help="per_device_train_batch_size values of the configs"
    )
    p.add_argument("--optim", default="adamw_torch", help="optim of every config")
    common.add_run_args(p, first="before", kept="study files, databases, logs", out="revisions.json")
    opts = p.parse_args(argv)
    if not (opts.before / "hpsearch" / "__init__.py").is_file():
        p.error(f"--before: {str(opts.before)!r} holds no hpsearch/ package (a checkout's root is wanted)")
    return opts


def summarize(runs: list[dict]) -> dict:
    per_repeat = []
    for run in runs:
        b, a = run["before"], run["after"]
        per_repeat.append(
            {
                "total_ratio": a["total_s"] / b["total_s"],
                "loop_ratio": a["loop_s"] / b["loop_s"],
                "median_trial_ratio": statistics.median(a["trial_s"][k] / b["trial_s"][k] for k in b["trial_s"]),
                "before_median_trial_s": statistics.median(b["trial_s"].values()),
                "after_median_trial_s": statistics.median(a["trial_s"].values()),
                "max_accuracy_difference": max(abs(a["accuracy"][k] - b["accuracy"][k]) for k in b["accuracy"]),
            }
        )
    medians = {k: statistics.median(r[k] for r in per_repeat) for k in per_repeat[0]}
    return {"per_repeat": per_repeat, "median": medians}


def report(summary: dict, n: int, before: Path) -> str:
    lines = [
        f"{n} configs; ratio = after (this checkout) / before ({before})",
        "",
        "| repeat | whole command | trial loop | median trial | median trial s, before -> after | max accuracy diff |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [*enumerate(summary["per_repeat"], 1), ("**median**", summary["median"])]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['total_ratio']:.3f} | {r['loop_ratio']:.3f} | {r['median_trial_ratio']:.3f} | "
            f"{r['before_median_trial_s']:.2f} -> {r['after_median_trial_s']:.2f} "
            f"| {r['max_accuracy_difference']:.4f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    opts = parse_args(argv)
    params_list = [
        {"learning_rate": lr, "per_device_train_batch_size": bs, "optim": opts.optim}
        for lr, bs in itertools.product(opts.learning_rates, opts.batch_sizes)
    ]
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-revisions-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    print(f"data: {subset}; configs: {len(params_list)}; work folder: {base}", flush=True)
    before = argparse.Namespace(**vars(opts), pythonpath=opts.before.resolve())
    runs = common.alternate(
        opts,
        base,
        {
            "before": lambda work: overhead.run_hpsearch(before, work, data_dir, params_list),
            "after": lambda work: overhead.run_hpsearch(opts, work, data_dir, params_list),
        },
    )
    summary = summarize(runs)
    table = report(summary, len(params_list), opts.before)
    print("\n" + table)
    details = {"data": subset, "configs": params_list, "before": str(opts.before.resolve())}
    common.write_result(opts, base, "revisions", details, runs, summary, table)


if __name__ == "__main__":
    sys.exit(main())
