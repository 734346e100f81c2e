"""Training batches grouped by length (`train: {train_sampling_strategy: group_by_length}`) against Trainer's
default random batches, side by side on the Banking77 subset of bench/curves.py.

Each side is `bench/curves.py` (the real CLI, a grid without a pruner) over the same configs, evaluated at
the end only (--every 1), so a trial's `train_seconds` is its training; the sides alternate over --repeats.
A padded batch is as long as its longest row: on this subset (16 tokens a row on average, up to 64) random
batches of 16 and 32 rows hold 2.5 and 2.9 tokens for every real one, and grouping by length removes most
of that padding. Reported per config: the median training-time ratio (grouped / random) and both final
accuracies (CPU training is deterministic, so one run of each gives the value).

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/length_grouping.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import _common as common

SIDES = {"random": [], "group_by_length": ["--train-sampling-strategy", "group_by_length"]}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--learning-rates", default="1.4e-4 1e-3", help="learning_rate grid (space-separated)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each side; the order alternates")
    p.add_argument("--out", type=Path, default=common.RESULTS / "length_grouping.json", help="results JSON")
    return p.parse_args(argv)


def run_side(side: str, repeat: int, opts) -> dict:
    out = common.RESULTS / f"length_grouping-{side}-r{repeat}.json"
    cmd = [sys.executable, str(Path(__file__).with_name("curves.py")), "--every", "1", "--out", str(out)]
    cmd += ["--learning-rates", *opts.learning_rates.split(), *SIDES[side]]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def main(argv=None) -> None:
    opts = parse_args(argv)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for r in range(opts.repeats):
        for side in SIDES if r % 2 == 0 else reversed(list(SIDES)):
            runs[side].append(run_side(side, r, opts))

    def key(t):
        return json.dumps(t["params"], sort_keys=True)

    def same(run, t):
        return next(x for x in run["trials"] if key(x) == key(t))

    rows = []
    for t in runs["random"][0]["trials"]:
        times = {s: [same(run, t)["train_seconds"] for run in runs[s]] for s in SIDES}
        grouped = same(runs["group_by_length"][0], t)
        rows.append(
            {
                "params": t["params"],
                "time_ratio": statistics.median(
                    g / r for g, r in zip(times["group_by_length"], times["random"], strict=True)
                ),
                "train_seconds": times,
                "accuracy": {"random": t["value"], "group_by_length": grouped["value"]},
            }
        )
    result = {
        "command": " ".join(["bench/length_grouping.py", *(argv or sys.argv[1:])]),
        "median_time_ratio": statistics.median(r["time_ratio"] for r in rows),
        "configs": rows,
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'config':40s} {'time g/r':>9s} {'acc random':>11s} {'acc grouped':>12s}")
    for r in rows:
        p = r["params"]
        name = f"lr {p['learning_rate']:g}, batch {p['per_device_train_batch_size']}, {p['optim']}"
        acc = r["accuracy"]
        print(f"{name:40s} {r['time_ratio']:9.2f} {acc['random']:11.4f} {acc['group_by_length']:12.4f}")
    print(f"median time ratio (grouped / random): {result['median_time_ratio']:.2f}")


if __name__ == "__main__":
    main()
