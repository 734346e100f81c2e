"""Two checkouts of hpsearch on the verbs that only read a study: how long a user waits for `status`, `export`,
`simulate` and `schema`, side by side.

Each verb runs as its own process (`python -m hpsearch.cli VERB ...`, this repository's venv), the "before" side
importing hpsearch from --before (a checkout of another revision, e.g. `git worktree add /tmp/before REV`), the
"after" side from this repository, the order alternating over --repeats. Both sides share one empty
`HPSEARCH_CACHE` made for the run, filled by an untimed call of each side first ("warm", what a user waits for
after the first call); `--cold` also times each call on another cache, emptied before it (a first call). Reported
as medians over repeats, ratio = after / before.

The study must have been run (its database beside it): `make demo` runs studies/quickstart.yaml.

    git worktree add /tmp/before REV
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/cli_latency.py --before /tmp/before --cold
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="a checkout of hpsearch (the folder holding hpsearch/)")
    p.add_argument("--study", type=Path, default=ROOT / "studies" / "quickstart.yaml", help="a study that has run")
    p.add_argument("--repeats", type=int, default=5, help="runs of each verb on each side; the order alternates")
    p.add_argument("--cold", action="store_true", help="also time each side's first call on an emptied cache")
    p.add_argument("--out", type=Path, default=RESULTS / "cli_latency.json", help="where to write the JSON results")
    opts = p.parse_args(argv)
    if not (opts.before / "hpsearch" / "__init__.py").is_file():
        p.error(f"--before: {str(opts.before)!r} holds no hpsearch/ package (a checkout's root is wanted)")
    if not opts.study.is_file():
        p.error(f"--study: {str(opts.study)!r} is no study file")
    return opts


def verbs(study: Path, scratch: Path) -> dict[str, list[str]]:
    return {
        "status": ["status", str(study)],
        "export": ["export", str(study), "--out", str(scratch / "best.yaml")],
        "simulate": ["simulate", str(study), "--set", "pruner.type=median"],
        "schema": ["schema"],
    }


def timed(side: Path, argv: list[str], cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(side), "HPSEARCH_CACHE": str(cache)}
    probe = [sys.executable, "-c", "import hpsearch; print(hpsearch.__file__)"]
    imported = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=cache.parent).stdout.strip()
    if Path(imported).resolve() != (side / "hpsearch" / "__init__.py").resolve():
        raise SystemExit(f"{side}: imports hpsearch from {imported}, not from this side")
    started = time.perf_counter()
    # Run from the cache's folder: `python -m` puts the working directory first on sys.path, and from this
    # repository's root it would import this hpsearch on both sides.
    done = subprocess.run(
        [sys.executable, "-m", "hpsearch.cli", *argv], env=env, capture_output=True, text=True, cwd=cache.parent
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{side}: hpsearch {' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def main(argv=None) -> dict:
    opts = parse_args(argv)
    sides = {"before": opts.before.resolve(), "after": ROOT}
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        kind: {side: {} for side in sides} for kind in ("warm", "cold")
    }
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-cli-") as tmp:
        scratch, cache, cold = Path(tmp), Path(tmp) / "cache", Path(tmp) / "cold-cache"
        commands = verbs(opts.study.resolve(), scratch)
        for side in sides.values():  # untimed: fill the cache, and the OS's file cache
            for argv_ in commands.values():
                timed(side, argv_, cache)
        for repeat in range(opts.repeats):
            order = list(sides.items()) if repeat % 2 == 0 else list(reversed(sides.items()))
            for verb, argv_ in commands.items():
                for name, side in order:
                    times["warm"][name].setdefault(verb, []).append(timed(side, argv_, cache))
                    if opts.cold:  # a cache of its own, emptied: the warm one stays filled
                        shutil.rmtree(cold, ignore_errors=True)
                        times["cold"][name].setdefault(verb, []).append(timed(side, argv_, cold))
    rows = {}
    for kind in ("warm", "cold") if opts.cold else ("warm",):
        for verb in commands:
            before, after = (statistics.median(times[kind][side][verb]) for side in sides)
            rows[f"{verb} ({kind})"] = {"before_s": before, "after_s": after, "ratio": after / before}
    print("| verb | before (s, median) | after (s, median) | after / before |\n|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['before_s']:.2f} | {row['after_s']:.2f} | {row['ratio']:.2f} |")
    result = {"repeats": opts.repeats, "study": str(opts.study), "rows": rows, "times": times}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
