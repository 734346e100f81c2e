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
    p.add_argument(
        "--pruner",
        type=json.loads,
        action="append",
        help="a pruner section to replay, as JSON (repeatable; default: a new study's, hyperband, and median 1 SE)",
    )
    p.add_argument(
        "--reuse", action="store_true", help="replay the curves this script recorded last time; train nothing"
    )
    return p.parse_args(argv)


def record(opts, subsample: int | None) -> dict:
    name = f"subsample-{subsample or 'none'}.json"
    if opts.reuse:
        return json.loads((OUT / name).read_text())
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

    from hpsearch.spec.choosers import PRUNER_TYPES

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
    # A section without a type is a new study's default pruner (hyperband), as in a study file.
    pruners = [{"type": "hyperband", **p} for p in opts.pruner or [{}, {"type": "median", "tolerance_se": 1.0}]]
    for pruner in pruners:
        PRUNER_TYPES[pruner["type"]].model_validate(pruner)
    runs = (("whole split", full), ("subsample", sub))
    replays = {}
    for pruner in pruners:
        label = json.dumps(pruner)
        outcomes = {name: {t["number"]: t["outcome"] for t in se.replay_trials(data, pruner)} for name, data in runs}
        summary = {name: se.replay_presets(data, {label: pruner})[0] for name, data in runs}
        differ = [n for n in outcomes["whole split"] if outcomes["whole split"][n] != outcomes["subsample"][n]]
        replays[label] = {"outcomes": outcomes, "summary": summary, "differ": differ}
    finals_match = all(f["value"] == s["value"] for f, s in pairs)
    lines = [
        f"{len(pairs)} configs; intermediate evaluations on {opts.subsample} of {full['subset']['eval_rows']} rows",
        f"- train time per trial, subsample / whole split (median): {time_ratio:.3f}",
        f"- final objectives identical: {finals_match}",
        f"- |subsample - whole| at each intermediate point, in the whole split's SE: median"
        f" {statistics.median(gaps):.2f}, max {max(gaps):.2f}",
    ]
    for label, r in replays.items():
        lines.append(f"- replayed under {label}: trials with another outcome: {r['differ'] or 'none'}")
        for name, summary in r["summary"].items():
            lines.append(f"  - {name}: saves {summary['saved']:.0%}, the best survives: {summary['best_survives']}")
    table = "\n".join(lines)
    print(table)
    (OUT / "subsample.json").write_text(json.dumps({"table": table, "replays": replays}, indent=1))


if __name__ == "__main__":
    main()
