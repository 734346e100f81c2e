"""How long `hpsearch report` takes on a large study: collect() and render() against the unavoidable read.

Builds a synthetic study in SQLite: N trials (default 10,000) over learning_rate, per_device_train_batch_size,
optim and warmup_steps; about 65% complete with 50 intermediate values each, 30% pruned part-way, 5% failed;
every trial carries the user attributes hpsearch records (a `curve` of one point per evaluation, steps, times,
throughput, training_arguments; not the large `training_arguments_all`). Then, --repeats times, each on a
freshly loaded study (so nothing comes from Optuna's in-process trial cache):

  read     optuna.load_study + study.get_trials(deepcopy=False): Optuna's own read of the trials (baseline)
  fast     optuna.load_study + hpsearch.trials_read.get_trials(study): the same trials from plain SELECTs
  collect  optuna.load_study + hpsearch.results.report.collect.collect(study): the fast read, the in-memory
           study Optuna's figures read, and every figure's data
  render   hpsearch.results.report.html.render(data): the figures (four of them drawn by optuna.visualization)
           and the HTML document, plotly.js inline

The order of the sides alternates between repeats; the first repeat checks that both reads give equal trials.
Prints a markdown table of medians and ratios to the read, and writes JSON to bench/results/report_scale.json
(git-ignored). Run from the repository root:

    .venv/bin/python bench/report_scale.py

Smoke test (seconds): .venv/bin/python bench/report_scale.py --trials 300 --repeats 1

The study is written with one bulk insert into Optuna's own tables (its SQLAlchemy models), because
study.add_trials() costs 40-70 ms a trial on SQLite (ten minutes for 10,000); the trials are built with
optuna.trial.create_trial first, and a sample is read back through the public API and compared with them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
from _common import RESULTS, ROOT
from optuna.distributions import CategoricalDistribution, FloatDistribution, distribution_to_json
from optuna.trial import FrozenTrial, TrialState

sys.path.insert(0, str(ROOT))
from hpsearch.results import trials_read  # noqa: E402
from hpsearch.results.report import collect as report
from hpsearch.results.report import html as report_html

STUDY = "bench-report-scale"
SPACE = {
    "learning_rate": FloatDistribution(1e-5, 3e-4, log=True),
    "per_device_train_batch_size": CategoricalDistribution([8, 16, 32, 64]),
    "optim": CategoricalDistribution(["adamw_torch", "adamw_torch_fused", "sgd", "adafactor"]),
    "warmup_steps": FloatDistribution(0.0, 0.2, step=0.05),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=10_000, help="trials in the synthetic study")
    p.add_argument("--evals", type=int, default=50, help="evaluations (intermediate values) of a completed trial")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each side; the table gives medians")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic trials")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (study.db, report.html)")
    p.add_argument("--out", type=Path, default=RESULTS / "report_scale.json", help="where to write the JSON results")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# The synthetic study


def synthetic_trial(rng: random.Random, number: int, evals: int) -> FrozenTrial:
    """A trial shaped like hpsearch's: accuracy climbs to a level set by the learning rate and the optimizer."""
    params = {
        "learning_rate": math.exp(rng.uniform(math.log(1e-5), math.log(3e-4))),
        "per_device_train_batch_size": rng.choice([8, 16, 32, 64]),
        "optim": rng.choice(["adamw_torch", "adamw_torch_fused", "sgd", "adafactor"]),
        "warmup_steps": rng.choice([0.0, 0.05, 0.1, 0.15, 0.2]),
    }
    level = 0.95 - 0.25 * abs(math.log10(params["learning_rate"]) + 3.7) - (0.4 if params["optim"] == "sgd" else 0.0)
    level = min(0.99, max(0.1, level + rng.gauss(0, 0.03)))
    max_steps = 100 * 512 // params["per_device_train_batch_size"]
    roll = rng.random()
    state = TrialState.FAIL if roll < 0.05 else TrialState.PRUNED if roll < 0.35 else TrialState.COMPLETE
    n = {TrialState.COMPLETE: evals, TrialState.PRUNED: rng.randint(2, evals - 1), TrialState.FAIL: 0}[state]
    steps = [max_steps * (k + 1) // evals for k in range(n)]
    values = {s: 0.1 + (level - 0.1) * (1 - math.exp(-4 * s / max_steps)) + rng.gauss(0, 0.005) for s in steps}
    curve = [
        {"step": s, "epoch": round(3 * s / max_steps, 4), "train_loss": 1.2 - v, "eval_loss": 1.3 - v}
        | {"eval_accuracy": v, "eval_f1_macro": v - 0.02}
        for s, v in values.items()
    ]
    seconds = 0.05 * (steps[-1] if steps else 1)
    attrs = {
        "curve": curve,
        "steps_trained": steps[-1] if steps else 0,
        "max_steps": max_steps,
        "train_seconds": seconds,
        "wall_time_s": seconds + 2.0,
        "train_samples_per_second": 20.0 * params["per_device_train_batch_size"] ** 0.7,
        "peak_memory_mb": 900.0,
        "device": "cuda:0 (synthetic)",
        "seed": 42,
        "data_fingerprint": "0" * 64,
        "training_arguments": {**params, "num_train_epochs": 3, "eval_strategy": "steps", "seed": 42},
    }
    if state == TrialState.FAIL:
        attrs = {"error": "RuntimeError: CUDA out of memory (synthetic)", "wall_time_s": 3.0}
    trial = optuna.trial.create_trial(
        state=state,
        value=values[steps[-1]] if state == TrialState.COMPLETE else None,
        params=params,
        distributions=SPACE,
        intermediate_values=values,
        user_attrs=attrs,
    )
    trial.number = number
    trial.datetime_start = dt.datetime(2026, 11, 1) + dt.timedelta(seconds=30 * number)
    trial.datetime_complete = trial.datetime_start + dt.timedelta(seconds=attrs["wall_time_s"])
    return trial


def bulk_insert(url: str, trials: list[FrozenTrial]) -> None:
    """Write TRIALS into a new study at URL in one transaction, through Optuna's own table definitions."""
    from optuna.storages._rdb import models

    storage = optuna.storages.RDBStorage(url)
    study_id = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")._study_id
    storage.set_study_user_attr(study_id, "spec", {"objective": {"metric": "accuracy", "direction": "maximize"}})
    rows: dict[str, list[dict]] = {"trials": [], "params": [], "values": [], "intermediate": [], "attrs": []}
    finite = models.TrialValueModel.TrialValueType.FINITE
    finite_iv = models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE
    dist_json = {name: distribution_to_json(d) for name, d in SPACE.items()}
    for trial_id, t in enumerate(trials, start=1):
        rows["trials"].append(
            {"trial_id": trial_id, "number": t.number, "study_id": study_id, "state": t.state}
            | {"datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete}
        )
        for name, value in t.params.items():
            internal = SPACE[name].to_internal_repr(value)
            rows["params"].append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": internal,
                    "distribution_json": dist_json[name],
                }
            )
        if t.value is not None:
            rows["values"].append({"trial_id": trial_id, "objective": 0, "value": t.value, "value_type": finite})
        for step, value in t.intermediate_values.items():
            rows["intermediate"].append(
                {"trial_id": trial_id, "step": step, "intermediate_value": value, "intermediate_value_type": finite_iv}
            )
        for key, value in t.user_attrs.items():
            rows["attrs"].append({"trial_id": trial_id, "key": key, "value_json": json.dumps(value)})
    tables = {
        "trials": models.TrialModel,
        "params": models.TrialParamModel,
        "values": models.TrialValueModel,
        "intermediate": models.TrialIntermediateValueModel,
        "attrs": models.TrialUserAttributeModel,
    }
    with storage.engine.begin() as conn:
        for name, model in tables.items():
            if rows[name]:
                conn.execute(model.__table__.insert(), rows[name])
    storage.engine.dispose()


def check_read_back(url: str, trials: list[FrozenTrial], rng: random.Random) -> None:
    """The bulk-written study, read through Optuna's public API, holds exactly the trials built."""
    stored = optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False)
    assert len(stored) == len(trials), (len(stored), len(trials))
    for i in rng.sample(range(len(trials)), min(50, len(trials))):
        a, b = stored[i], trials[i]
        same = (a.number, a.state, a.value, a.params, a.intermediate_values, a.user_attrs) == (
            b.number,
            b.state,
            b.value,
            b.params,
            b.intermediate_values,
            b.user_attrs,
        )
        assert same, f"trial {i} differs after the bulk insert"


# --------------------------------------------------------------------------------------------
# Timing


def time_read(url: str, fast: bool = False) -> tuple[float, list[FrozenTrial]]:
    started = time.perf_counter()
    study = optuna.load_study(study_name=STUDY, storage=url)
    trials = trials_read.get_trials(study) if fast else study.get_trials(deepcopy=False)
    return time.perf_counter() - started, trials


def time_report(url: str, out: Path) -> tuple[float, float, int, report.ReportData]:
    started = time.perf_counter()
    data = report.collect(optuna.load_study(study_name=STUDY, storage=url))
    collected = time.perf_counter()
    page = report_html.render(data)
    rendered = time.perf_counter()
    out.write_text(page, encoding="utf-8")
    return collected - started, rendered - collected, len(page.encode()), data


def main(argv=None) -> None:
    opts = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    url = f"sqlite:///{work / 'study.db'}"
    rng = random.Random(opts.seed)

    started = time.perf_counter()
    trials = [synthetic_trial(rng, i, opts.evals) for i in range(opts.trials)]
    bulk_insert(url, trials)
    check_read_back(url, trials, rng)
    build_s = time.perf_counter() - started
    n_values = sum(len(t.intermediate_values) for t in trials)
    db_mb = (work / "study.db").stat().st_size / 2**20
    print(f"built {opts.trials:,} trials, {n_values:,} intermediate values, {db_mb:.1f} MiB in {build_s:.1f} s")

    runs = []
    for r in range(opts.repeats):
        run: dict = {}
        read: dict[str, list[FrozenTrial]] = {}
        for side in ("read", "fast", "report") if r % 2 == 0 else ("report", "fast", "read"):
            if side in ("read", "fast"):
                run[f"{side}_s"], read[side] = time_read(url, fast=side == "fast")
            else:
                run["collect_s"], run["render_s"], run["html_bytes"], data = time_report(url, work / "report.html")
        run["total_s"] = run["collect_s"] + run["render_s"]
        if r == 0:  # finite values only, so FrozenTrial's == (its __dict__) is exact here
            assert read["fast"] == read["read"], "the fast read differs from Optuna's"
        del read
        print(
            f"repeat {r + 1}/{opts.repeats}: " + ", ".join(f"{k} {v:.2f}" for k, v in run.items() if k.endswith("_s"))
        )
        runs.append(run)

    keys = ("read_s", "fast_s", "collect_s", "render_s", "total_s")
    med = {k: statistics.median(run[k] for run in runs) for k in keys}
    command = " ".join([".venv/bin/python", "bench/report_scale.py", *(argv if argv is not None else sys.argv[1:])])
    html_mb = runs[-1]["html_bytes"] / 2**20
    table = "\n".join(
        [
            f"`{command}` ({opts.trials:,} trials, {n_values:,} intermediate values, SQLite {db_mb:.0f} MiB; "
            f"median of {opts.repeats}; HTML {html_mb:.1f} MiB, {len(data.figures)} figures)",
            "",
            "| step | median s | x read |",
            "|---|---:|---:|",
            f"| read: load_study + get_trials (baseline) | {med['read_s']:.2f} | 1.00 |",
            f"| fast read: load_study + trials_read.get_trials | {med['fast_s']:.2f} | "
            f"{med['fast_s'] / med['read_s']:.2f} |",
            f"| collect (includes the fast read) | {med['collect_s']:.2f} | {med['collect_s'] / med['read_s']:.2f} |",
            f"| render | {med['render_s']:.2f} | {med['render_s'] / med['read_s']:.2f} |",
            f"| collect + render | {med['total_s']:.2f} | {med['total_s'] / med['read_s']:.2f} |",
        ]
    )
    print("\n" + table)
    result = {
        "benchmark": "report_scale",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "study": {"trials": opts.trials, "intermediate_values": n_values, "sqlite_mib": round(db_mb, 1)},
        "figures": list(data.figures),
        "notes": data.notes,
        "build_s": build_s,
        "runs": runs,
        "median": med,
        "table": table,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {opts.out}")
    if opts.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
