"""Two recorded grids of the same configs (bench/curves.py output) compared config by config: each config's
final value in A and in B, B minus A, and over the configs the mean difference with its 95 % interval
(Student's t), the median, how many are lower and higher (a two-sided sign test's p), and the differences'
spread. No training: it reads the two JSON files.

What it tells: whether a change that should not move what trains (B: e.g. `data.length_split`) moves it
more than chance does. A difference of zero in the mean with a spread like a reseeded run's is chance.

    .venv/bin/python bench/compare_grids.py bench/data/curves-classification.json \\
        bench/results/curves-classification-split3.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("a", type=Path, help="the reference grid (curves JSON)")
    p.add_argument("b", type=Path, help="the grid to compare with it")
    p.add_argument("--out", type=Path, help="write the comparison as JSON here")
    return p.parse_args(argv)


def key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def compare(a: dict, b: dict) -> dict:
    from scipy import stats

    finals_a = {key(t["params"]): t["value"] for t in a["trials"] if t["value"] is not None}
    rows = []
    for t in b["trials"]:
        k = key(t["params"])
        if t["value"] is None or k not in finals_a:
            continue
        rows.append({"params": t["params"], "a": finals_a[k], "b": t["value"], "difference": t["value"] - finals_a[k]})
    rows.sort(key=lambda r: -r["a"] if a["direction"] == "maximize" else r["a"])
    diffs = [r["difference"] for r in rows]
    n = len(diffs)
    mean = statistics.fmean(diffs) if diffs else math.nan
    sd = statistics.stdev(diffs) if n > 1 else math.nan
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    lower, higher = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
    # two-sided: so uneven a split of the non-zero differences under a fair coin
    sign_p = stats.binomtest(min(lower, higher), lower + higher).pvalue if lower + higher else 1.0
    pick = max if a["direction"] == "maximize" else min
    return {
        "a": a.get("command"),
        "b": b.get("command"),
        "configs": n,
        "mean_difference": mean,
        "interval_95": [mean - half, mean + half],
        "median_difference": statistics.median(diffs) if diffs else math.nan,
        "sd_difference": sd,
        "lower": lower,
        "higher": higher,
        "sign_test_p": float(sign_p),
        "best_a": pick((r["a"] for r in rows), default=math.nan),
        "best_b": pick((r["b"] for r in rows), default=math.nan),
        "rows": rows,
    }


def table(result: dict, metric: str) -> str:
    lines = [f"| config | A {metric} | B {metric} | B - A |", "|---|---:|---:|---:|"]
    for r in result["rows"]:
        p = r["params"]
        name = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in p.values())
        lines.append(f"| {name} | {r['a']:.4f} | {r['b']:.4f} | {r['difference']:+.4f} |")
    low, high = result["interval_95"]
    lines += [
        "",
        f"- {result['configs']} configs: B - A mean {result['mean_difference']:+.4f} (95 % interval {low:+.4f} to "
        f"{high:+.4f}), median {result['median_difference']:+.4f}, sd {result['sd_difference']:.4f}",
        f"- lower in {result['lower']}, higher in {result['higher']} "
        f"(two-sided sign test p {result['sign_test_p']:.2f})",
        f"- best: A {result['best_a']:.4f}, B {result['best_b']:.4f}",
    ]
    return "\n".join(lines)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> None:
    opts = parse_args(argv)
    a, b = (json.loads(p.read_text()) for p in (opts.a, opts.b))
    if a.get("direction") != b.get("direction") or a.get("objective_key") != b.get("objective_key"):
        fail(
            f"{opts.b}: objective {b.get('objective_key')} ({b.get('direction')}), {opts.a} has "
            f"{a.get('objective_key')} ({a.get('direction')}); compare grids of one objective"
        )
    result = compare(a, b)
    if not result["configs"]:
        fail(f"{opts.b}: no config with a final value in common with {opts.a}; compare grids of the same configs")
    print(table(result, a["objective_key"]))
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
