"""Search efficiency on recorded curves: samplers and pruners, against the full grid, on the ground truth
of bench/curves.py (every config of a grid trained to its end, its curve on the progress axis).

Two measures, both with hpsearch's and Optuna's real classes, and no training:

  replay  `hpsearch simulate`'s engine (hpsearch.results.simulate.replay): the grid's trials, in the order
          they ran, under each pruner preset: the share of the grid's training saved, and whether the
          grid's best config and its top 3 survive.
  search  a tabular benchmark (the curves as a lookup table, as in Syne Tune's simulator backend): each
          preset's sampler (hpsearch.search.samplers, from a study file) draws configs over the study's
          own space (learning_rate log-uniform over the grid's range, the categorical grid values), a
          drawn learning rate is read as the nearest grid value on a log scale, and the trial reports
          that config's recorded curve to the preset's pruner, which prunes it as in a real run. Per
          preset and sampler seed: the samples trained until the best completed trial reaches the grid's
          best minus one standard error of its evaluation (accuracy: sqrt(p(1-p)/n)), and the final best.
          Medians over --seeds.

Training on a CPU is deterministic for a config (seed 42), so a config's curve in a real run is the one
recorded; what the lookup leaves out is the learning rate between grid points.

    .venv/bin/python bench/search_efficiency.py                      # bench/data/curves-classification.json
    .venv/bin/python bench/search_efficiency.py --curves bench/data/curves-causal-lm.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from fractions import Fraction
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpsearch.results.simulate import replay  # noqa: E402
from hpsearch.search import space  # noqa: E402
from hpsearch.search.noise import NoiseAwarePruner  # noqa: E402
from hpsearch.search.pruners import pruner_of  # noqa: E402
from hpsearch.search.samplers import build_sampler  # noqa: E402
from hpsearch.spec.choosers import PRUNER_TYPES, HyperbandPruner  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _default_label() -> str:
    """A new study's pruner, named from the schema's defaults (the preset's one home is the schema)."""
    d = HyperbandPruner(type="hyperband")
    first = Fraction(d.min_resource).limit_denominator(1000)
    return f"hpsearch's default (hyperband {first}..{d.max_resource:g}, /{d.reduction_factor}, {d.tolerance_se:g} SE)"


# Pruner presets, in samples of the progress axis (a trial of the recorded grids trains 2,000 samples).
PRUNERS = {
    "none": {"type": "none"},
    _default_label(): {"type": "hyperband"},
    "median (Optuna's defaults)": {"type": "median", "tolerance_se": 0},
    "median, 1 SE": {"type": "median", "tolerance_se": 1},
    "median, 2 SE": {"type": "median", "tolerance_se": 2},
    "median startup 2, 1 SE": {"type": "median", "n_startup_trials": 2, "tolerance_se": 1},
    "median warmup 25%": {"type": "median", "n_warmup_steps": 500, "tolerance_se": 0},
    "median warmup 25%, 1 SE": {"type": "median", "n_warmup_steps": 500, "tolerance_se": 1},
    "median warmup 50%, 1 SE": {"type": "median", "n_warmup_steps": 1000, "tolerance_se": 1},
    "hyperband (Optuna's defaults)": {"type": "hyperband", "tolerance_se": 0},
    "hyperband, 1 SE (the default before 0.3.0)": {"type": "hyperband", "tolerance_se": 1},
    "hyperband, 1.5 SE": {"type": "hyperband", "tolerance_se": 1.5},
    "hyperband, 3 SE": {"type": "hyperband", "tolerance_se": 3},
    "hyperband 128/3 (the issue's)": {
        "type": "hyperband",
        "min_resource": 128,
        "reduction_factor": 3,
        "tolerance_se": 0,
    },
    "hyperband 128/3, 1 SE": {"type": "hyperband", "min_resource": 128, "reduction_factor": 3, "tolerance_se": 1},
    "hyperband 128/3, 2 SE": {"type": "hyperband", "min_resource": 128, "reduction_factor": 3, "tolerance_se": 2},
    "hyperband 200/3, 1 SE (a tenth)": {
        "type": "hyperband",
        "min_resource": 200,
        "reduction_factor": 3,
        "tolerance_se": 1,
    },
    "hyperband 200/3 (a tenth)": {"type": "hyperband", "min_resource": 200, "reduction_factor": 3, "tolerance_se": 0},
    "hyperband 256/3, 1 SE": {"type": "hyperband", "min_resource": 256, "reduction_factor": 3, "tolerance_se": 1},
    "successive-halving 256/3, 1 SE": {
        "type": "successive-halving",
        "min_resource": 256,
        "reduction_factor": 3,
        "tolerance_se": 1,
    },
}
SAMPLERS = {
    "tpe": {"type": "tpe", "n_startup_trials": 5},
    # TPE's random startup trials, against a new study's default (the `tpe` preset above keeps 5, the
    # replays' setting since they began): which count finds the grid's best soonest in a 20-trial study
    "tpe-default": {"type": "tpe"},
    **{f"tpe-startup{n}": {"type": "tpe", "n_startup_trials": n} for n in (2, 3, 4, 6, 8, 10)},
    "random": {"type": "random"},
    "qmc": {"type": "qmc", "scramble": True},
    "gp": {"type": "gp", "n_startup_trials": 5},
    # the same question for the Gaussian process (a new study's gp takes the schema's default)
    "gp-default": {"type": "gp"},
    **{f"gp-startup{n}": {"type": "gp", "n_startup_trials": n} for n in (2, 3, 10)},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--curves", type=Path, default=DATA / "curves-classification.json", help="bench/curves.py output")
    p.add_argument("--trials", type=int, default=20, help="trials per search (the grid's size by default: 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampler seeds (medians over them)")
    p.add_argument("--samplers", nargs="+", default=["tpe"], choices=sorted(SAMPLERS), help="samplers to search with")
    p.add_argument(
        "--pruners",
        nargs="+",
        default=list(PRUNERS),
        choices=list(PRUNERS),
        metavar="PRESET",
        help="pruner presets (names above)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search_efficiency.json", help="JSON")
    return p.parse_args(argv)


class Spec:
    """The two sections hpsearch's sampler and pruner builders read, from a preset."""

    def __init__(self, sampler: dict, search: dict, source: str) -> None:
        from hpsearch.spec.choosers import SAMPLER_TYPES

        self.sampler = SAMPLER_TYPES[sampler["type"]].model_validate(sampler)
        self.search = search
        self.source = source


def pruner_section(settings: dict):
    return PRUNER_TYPES[settings["type"]].model_validate(settings)


def frozen(trial: dict) -> optuna.trial.FrozenTrial:
    state = optuna.trial.TrialState[trial["state"]]
    return optuna.trial.create_trial(
        state=state,
        value=trial["value"] if state == optuna.trial.TrialState.COMPLETE else None,
        params=trial["params"],
        distributions={k: optuna.distributions.CategoricalDistribution([v]) for k, v in trial["params"].items()},
        intermediate_values={int(k): v for k, v in trial["intermediate_values"].items()},
        user_attrs={"curve": trial["curve"]},
    )


def _frozen_trials(data: dict) -> list:
    trials = [frozen(t) for t in data["trials"]]
    for number, t in enumerate(trials):
        t.number = number
    return trials


def replay_trials(data: dict, settings: dict) -> list[dict]:
    """Each trial of the grid under one pruner: simulate's rows, as dicts."""
    pruner = pruner_of(pruner_section(settings), "preset")
    sim = replay(_frozen_trials(data), "grid", data["direction"], pruner, data["objective_key"], settings)
    return sim.to_dict()["trials"]


def replay_presets(data: dict, presets: dict) -> list[dict]:
    trials = _frozen_trials(data)
    rows = []
    for name, settings in presets.items():
        pruner = pruner_of(pruner_section(settings), "preset")
        sim = replay(trials, "grid", data["direction"], pruner, data["objective_key"], settings, top_k=3)
        rows.append({"preset": name, **{k: v for k, v in sim.to_dict().items() if k != "trials"}})
    return rows


def _search_space(data: dict):
    """The study's own space: learning_rate log-uniform over the grid's range, the other params as lists."""
    from hpsearch.spec.types import ParamSpec

    values = {k: sorted({t["params"][k] for t in data["trials"]}, key=str) for k in data["trials"][0]["params"]}
    rates = sorted(values.pop("learning_rate"))
    search = {"learning_rate": ParamSpec("learning_rate", "float", rates[0], rates[-1], log=True)}
    search.update({k: ParamSpec(k, "categorical", choices=tuple(v)) for k, v in values.items()})
    return search, rates


def search_once(data: dict, sampler: dict, pruner_settings: dict, seed: int, n_trials: int) -> dict:
    """One search over the lookup table: samples trained after each trial and the best so far."""
    search, rates = _search_space(data)
    table = {tuple(sorted(t["params"].items())): t for t in data["trials"]}
    spec = Spec({**sampler, "seed": seed}, search, "preset")
    pruner = pruner_of(pruner_section(pruner_settings), "preset")
    maximize = data["direction"] == "maximize"
    key = data["objective_key"]
    study = optuna.create_study(
        study_name=f"search-{seed}", direction=data["direction"], sampler=build_sampler(spec), pruner=pruner
    )
    spent, trace = 0, []

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        params = space.suggest(trial, search)
        rate = min(rates, key=lambda r: abs(math.log(r) - math.log(params["learning_rate"])))
        recorded = table[tuple(sorted({**params, "learning_rate": rate}.items()))]
        curve = recorded["curve"]
        if isinstance(pruner, NoiseAwarePruner):  # as the trial's reporter does when training begins
            pruner.observe_budget(curve[-1]["samples"])
        for point in curve:
            at, value = point["samples"], point[key]
            trial.report(value, at)
            if at == curve[-1]["samples"]:
                break
            if isinstance(pruner, NoiseAwarePruner):
                prune = pruner.judge(trial, at, point.get(f"{key}_se"), point.get("eval_rows"))[0]
            else:
                prune = trial.should_prune()
            if prune:
                spent += at
                trace.append((spent, None))
                raise optuna.TrialPruned()
        spent += curve[-1]["samples"]
        trace.append((spent, recorded["value"]))
        return recorded["value"]

    study.optimize(objective, n_trials=n_trials)
    best, curve = None, []
    for samples, value in trace:
        if value is not None and (best is None or (value > best if maximize else value < best)):
            best = value
        curve.append((samples, best))
    return {"trace": curve, "samples": spent, "best": best}


def grid_reference(data: dict) -> dict:
    maximize = data["direction"] == "maximize"
    done = [t for t in data["trials"] if t["state"] == "COMPLETE"]
    best = (max if maximize else min)(done, key=lambda t: t["value"])
    last = best["curve"][-1]
    se = last.get(f"{data['objective_key']}_se")
    if se is None:  # a loss without per-example errors: no standard error recorded
        se = 0.0
    target = best["value"] - se if maximize else best["value"] + se
    grid_samples = sum(t["curve"][-1]["samples"] for t in data["trials"])
    spent, reached = 0, None  # the grid in the order it ran
    for t in data["trials"]:
        spent += t["curve"][-1]["samples"]
        if (
            reached is None
            and t["state"] == "COMPLETE"
            and (t["value"] >= target if maximize else t["value"] <= target)
        ):
            reached = spent
    return {
        "best": best["value"],
        "best_params": best["params"],
        "se": se,
        "target": target,
        "samples": grid_samples,
        "reached": reached,
    }


def reached(trace, target: float, maximize: bool) -> int | None:
    for samples, best in trace:
        if best is not None and (best >= target if maximize else best <= target):
            return samples
    return None


def median_interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median (seeded: the same values give the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def main(argv=None) -> None:
    opts = parse_args(argv)
    data = json.loads(opts.curves.read_text())
    maximize = data["direction"] == "maximize"
    grid = grid_reference(data)
    presets = {name: PRUNERS[name] for name in opts.pruners}
    replays = replay_presets(data, presets)
    searches = []
    for sampler in opts.samplers:
        for name, settings in presets.items():
            runs = [search_once(data, SAMPLERS[sampler], settings, seed, opts.trials) for seed in opts.seeds]
            hits = [reached(r["trace"], grid["target"], maximize) for r in runs]
            searches.append(
                {
                    "sampler": sampler,
                    "pruner": name,
                    "samples_median": statistics.median(r["samples"] for r in runs),
                    "best_median": statistics.median(r["best"] for r in runs),
                    "best_each": [r["best"] for r in runs],
                    "reached_each": hits,
                    # a search that never reached the target counts as infinitely expensive in the median
                    "reached_median": statistics.median(h if h is not None else math.inf for h in hits),
                    "reached_interval": median_interval([h if h is not None else math.inf for h in hits]),
                }
            )
    lines = [
        f"curves: {opts.curves.name} ({len(data['trials'])} grid configs); grid best {grid['best']:.4f} "
        f"(SE {grid['se']:.4f}); target {grid['target']:.4f}; grid trained {grid['samples']:,} samples, "
        f"reached the target after {grid['reached']:,}",
        "",
        "replay of the grid | saved | grid's best survives | top 3 surviving",
        "|---|---:|:---:|---:|",
    ]
    for r in replays:
        lines.append(
            f"| {r['preset']} | {r['saved']:.0%} | {'yes' if r['best_survives'] else 'no'} | {r['top_k_survivors']}/3 |"
        )
    lines += [
        "",
        f"| sampler | pruner | samples to target (median of {len(opts.seeds)}) | / grid's (95 % interval)"
        " | seeds reaching it | samples trained | best (median) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in searches:
        hit, (low, high) = s["reached_median"], s["reached_interval"]
        shown = "not reached" if hit == math.inf else f"{hit:,.0f}"
        ratio = "" if hit == math.inf else f"{hit / grid['samples']:.2f}"
        if len(opts.seeds) >= 10:  # an interval over three seeds says nothing
            ratio += " (" + ", ".join("-" if v == math.inf else f"{v / grid['samples']:.2f}" for v in (low, high)) + ")"
        reaching = f"{sum(h is not None for h in s['reached_each'])}/{len(opts.seeds)}"
        cells = [
            s["sampler"],
            s["pruner"],
            shown,
            ratio,
            reaching,
            f"{s['samples_median']:,.0f}",
            f"{s['best_median']:.4f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": " ".join(sys.argv), "grid": grid, "replays": replays, "searches": searches, "table": table}
    opts.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {opts.out}")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    main()
