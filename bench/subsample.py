"""Intermediate evaluations on a stratified eval subsample against the whole eval split, side by side.

Runs bench/curves.py twice on the same configs (a slice of its Banking77 grid, every config trained to its
end, no pruner): once with every evaluation on the whole 400-row eval split, once with the intermediate ones
on `--subsample` rows (`evaluation.subsample`; the final one still on the whole split). Evaluation does not
move the training's random state, so both runs train the same weights: the final objectives match and only
the intermediate values differ. Reported: the median train time per trial of each (side by side, the order
alternating per repeat), how far the subsample's intermediate values are from the whole split's (in the
whole split's standard errors), and the cost in wrong prunes: each run's curves replayed
(hpsearch.results.simulate) under the default pruner, which trials each would prune and whether the best
survives.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/subsample.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--subsample", type=int, default=100, help="rows of the intermediate evaluations")
    p.add_argument("--learning-rates", type=float, nargs="+", default=[1.4e-4, 1e-3], help="learning_rate grid")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32], help="batch size grid")
    p.add_argument("--optims", nargs="+", default=["adamw_torch", "adafactor"], help="optim grid")
    p.add_argument("--pruner", type=json.loads, default=None, help="pruner to replay (default: a new study's)")
    return p.parse_args(argv)


def record(opts, subsample: int | None) -> dict:
    name = f"subsample-{subsample or 'none'}.json"
    cmd = [sys.executable, str(ROOT / "bench" / "curves.py"), "--out", str(OUT / name), "--learning-rates"]
    cmd += [*map(str, opts.learning_rates), "--batch-sizes", *map(str, opts.batch_sizes), "--optims", *opts.optims]
    if subsample:
        cmd += ["--subsample", str(subsample)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads((OUT / name).read_text())


def main(argv=None) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import search_efficiency as se

    from hpsearch.spec.choosers import PRUNER_TYPES, MedianPruner

    opts = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    sub = record(opts, opts.subsample)  # the subsample first, so drift does not favour it
    full = record(opts, None)
    key = full["objective_key"]
    pairs = list(zip(full["trials"], sub["trials"], strict=True))
    assert all(f["params"] == s["params"] for f, s in pairs)
    time_ratio = statistics.median(s["train_seconds"] / f["train_seconds"] for f, s in pairs)
    gaps = []
    for f, s in pairs:
        for a, b in zip(f["curve"][:-1], s["curve"][:-1], strict=True):
            gaps.append(abs(a[key] - b[key]) / a[f"{key}_se"] if a[f"{key}_se"] else 0.0)
    pruner = opts.pruner or {"type": "median", **MedianPruner(type="median").model_dump(include={"tolerance_se"})}
    PRUNER_TYPES[pruner["type"]].model_validate(pruner)
    replays = {
        name: se.replay_presets(data, {name: pruner})[0] for name, data in (("whole split", full), ("subsample", sub))
    }
    outcomes = {
        name: {t["number"]: t["outcome"] for t in se.replay_trials(data, pruner)}
        for name, data in (("whole split", full), ("subsample", sub))
    }
    differ = [n for n in outcomes["whole split"] if outcomes["whole split"][n] != outcomes["subsample"][n]]
    finals_match = all(f["value"] == s["value"] for f, s in pairs)
    lines = [
        f"{len(pairs)} configs; intermediate evaluations on {opts.subsample} of {full['subset']['eval_rows']} rows",
        f"- train time per trial, subsample / whole split (median): {time_ratio:.3f}",
        f"- final objectives identical: {finals_match}",
        f"- |subsample - whole| at each intermediate point, in the whole split's SE: median"
        f" {statistics.median(gaps):.2f}, max {max(gaps):.2f}",
        f"- replayed under {pruner}: trials with another outcome: {differ or 'none'}",
    ]
    for name, r in replays.items():
        lines.append(f"  - {name}: saves {r['saved']:.0%}, the best survives: {r['best_survives']}")
    table = "\n".join(lines)
    print(table)
    (OUT / "subsample.json").write_text(json.dumps({"table": table, "outcomes": outcomes}, indent=1))


if __name__ == "__main__":
    main()
