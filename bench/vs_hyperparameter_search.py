"""hpsearch against transformers' `Trainer.hyperparameter_search(backend="optuna")`, side by side.

Same Banking77 subset, model (all-MiniLM-L6-v2), search space, number of trials and sampler on both sides:

  search   learning_rate float log [--lr-low, --lr-high], per_device_train_batch_size --batch-sizes,
           optim --optims (--params picks a subset; an unsearched one is fixed, see the flags)
  sampler  optuna TPESampler(seed, n_startup_trials, multivariate) -- hpsearch through its study file,
           HF through hyperparameter_search(sampler=...), which it forwards to optuna.create_study.
           multivariate defaults to True because that is hpsearch's default for tpe.
  training eval_strategy steps with the same eval_steps fraction, num_train_epochs, seed,
           per_device_eval_batch_size, report_to none, disable_tqdm; save_strategy no on both (HF's own
           default, steps, also writes a checkpoint at the end of every trial; see --hf-save-strategy).
           Everything else on the HF side is TrainingArguments' default.
  pruning  hpsearch: its default pruner for a new study (no pruner key in the study file), or --pruner
           (a study file's pruner section as JSON), or with --pruner-startup-trials a median pruner. HF:
           hyperparameter_search passes no pruner, so optuna.create_study uses its default MedianPruner()
           (n_startup_trials 5, n_warmup_steps 0, interval_steps 1). hpsearch reports the objective keyed by
           training samples seen and evaluates on that axis (evaluation.every = --eval-steps as a fraction,
           or --hpsearch-every); HF by optimizer step, evaluating every --eval-steps of its steps.
  objective eval_accuracy, maximized (HF: compute_objective=lambda m: m["eval_accuracy"], since its
           default objective is the sum of all metrics). On transformers 5 both score the final weights:
           Trainer evaluates at the last step when eval_strategy is steps.

Identical params do not give identical curves across the two sides: hyperparameter_search's model_init
path draws a different random stream (classifier init / data order) than set_seed + from_pretrained +
Trainer, which is what hpsearch and a plain loop do. So best eval_accuracy differs by seed noise as well as
by what the samplers and pruners did; compare it over repeats or larger --trials, not from one run.

Each side runs as its own process and is timed as a whole command (both pay process start, imports,
data loading and tokenization): hpsearch is the real CLI, `hpsearch run STUDY --quiet`, on a fresh SQLite
study; HF is this script invoked with --hf-child, using an in-memory study as hyperparameter_search does
by default (the study is captured, not changed, to count pruned trials). The order alternates over
--repeats. Reported: wall time of each and their ratio (medians over repeats), best eval_accuracy,
trials complete / pruned / failed, and whether both sides drew the same startup (random) trials. Also
each side's trial time until its best first reached the lower of the two final bests, and their ratio
(`--summarize RESULT...` prints that reading of stored results without training).

Run from the repository root (results: bench/results/vs_hyperparameter_search.json):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/vs_hyperparameter_search.py

Smoke test (a few minutes on 2 cores):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/vs_hyperparameter_search.py \
        --train-samples 64 --eval-samples 32 --trials 2
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import _common as common

STUDY_NAME = "bench-vs-hf"
PARAMS = ("learning_rate", "per_device_train_batch_size", "optim")
HF_DEFAULT_PRUNER = "MedianPruner() [optuna default: n_startup_trials=5, n_warmup_steps=0, interval_steps=1]"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(p, train_samples=1000, eval_samples=300, each="trial")
    p.add_argument("--eval-batch-size", type=int, default=64, help="per_device_eval_batch_size on both sides")
    p.add_argument("--seed", type=int, default=42, help="TrainingArguments seed on both sides")
    p.add_argument("--trials", type=int, default=8, help="trials of each search")
    p.add_argument(
        "--params",
        default=",".join(PARAMS),
        help=f"comma-separated subset of {','.join(PARAMS)} to search; the others are fixed",
    )
    p.add_argument("--lr-low", type=float, default=2e-5, help="learning_rate lower bound (log scale)")
    p.add_argument("--lr-high", type=float, default=5e-4, help="learning_rate upper bound (log scale)")
    p.add_argument("--lr-fixed", type=float, default=1e-4, help="learning_rate when it is not searched")
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[16, 32],
        help="per_device_train_batch_size choices (the first when not searched)",
    )
    p.add_argument(
        "--optims",
        nargs="+",
        default=["adamw_torch", "adafactor"],
        help="optim choices (the first when not searched)",
    )
    p.add_argument("--sampler-seed", type=int, default=0, help="TPESampler seed on both sides")
    p.add_argument("--n-startup-trials", type=int, default=4, help="TPESampler n_startup_trials on both sides")
    p.add_argument(
        "--multivariate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TPESampler multivariate on both sides (default on: hpsearch's default for tpe)",
    )
    p.add_argument(
        "--pruner",
        type=json.loads,
        default=None,
        help='hpsearch\'s pruner section as JSON, e.g. \'{"type": "hyperband", "min_resource": 128}\' (default: none'
        " given, so hpsearch's default pruner; see --pruner-startup-trials)",
    )
    p.add_argument(
        "--pruner-startup-trials",
        type=int,
        default=None,
        help="instead of the default pruner, a median pruner with this n_startup_trials (and --n-warmup-steps)",
    )
    p.add_argument(
        "--n-warmup-steps",
        type=int,
        default=None,
        help="with --pruner-startup-trials: n_warmup_steps in samples (default: a quarter of a trial's samples)",
    )
    p.add_argument(
        "--hpsearch-every",
        type=float,
        default=None,
        help="hpsearch's evaluation.every, when it is not the HF side's --eval-steps (e.g. 0.0625: hpsearch's"
        " default of 16 evaluations a trial, its hyperband's first rung at 1/16)",
    )
    p.add_argument(
        "--subsample",
        type=int,
        default=None,
        help="hpsearch's evaluation.subsample: rows of its intermediate evaluations (the final one on every row);"
        " HF has no such option and evaluates every row each time",
    )
    p.add_argument(
        "--length-split",
        type=int,
        default=None,
        help="hpsearch's data.length_split: each training batch as this many micro-batches of its rows sorted"
        " by length (the same gradient, less padding); HF trains each batch whole",
    )
    p.add_argument(
        "--hf-save-strategy",
        default="no",
        choices=("no", "steps", "epoch"),
        help="save_strategy of the HF side ('steps' is TrainingArguments' default; hpsearch keeps no checkpoints)",
    )
    common.add_run_args(p, first="hpsearch", kept="study file, database, logs", out="vs_hyperparameter_search.json")
    p.add_argument(
        "--summarize",
        type=Path,
        nargs="+",
        metavar="RESULT",
        help="print the time-to-a-common-best reading of stored results (JSON files this script wrote) and exit",
    )
    p.add_argument(
        "--hf-child", type=Path, metavar="JOB", help="internal: run the HF side described by JOB (a JSON file) and exit"
    )
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# HF side (runs in its own process)


def hf_child(job_path: Path) -> None:
    import optuna
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    job = json.loads(job_path.read_text())

    # Keep a handle on the study hyperparameter_search creates (to count pruned trials); nothing else changes.
    captured = {}
    create_study = optuna.create_study

    def capturing_create_study(*args, **kwargs):
        captured["study"] = create_study(*args, **kwargs)
        captured["pruner"] = type(captured["study"].pruner).__name__
        return captured["study"]

    optuna.create_study = capturing_create_study

    data = common.child_data(job)

    def model_init(trial=None):
        return data.new_model()

    def hp_space(trial):
        out = {}
        for name, spec in job["search"].items():
            if spec["type"] == "float":
                out[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"])
            else:
                out[name] = trial.suggest_categorical(name, spec["choices"])
        return out

    output_dir = tempfile.mkdtemp(prefix="bench-hf-")
    trainer = Trainer(
        model_init=model_init,
        args=TrainingArguments(output_dir=output_dir, **job["args"]),
        train_dataset=data.train,
        eval_dataset=data.evaluation,
        data_collator=DataCollatorWithPadding(data.tokenizer),
        compute_metrics=common.accuracy,
    )
    best = trainer.hyperparameter_search(
        hp_space=hp_space,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        n_trials=job["n_trials"],
        direction="maximize",
        backend="optuna",
        sampler=optuna.samplers.TPESampler(**job["sampler"]),
    )
    shutil.rmtree(output_dir, ignore_errors=True)
    study = captured["study"]
    result = {
        "best_value": best.objective,
        "pruner": captured["pruner"],
        "trials": [trial_row(t) for t in study.trials],
    }
    Path(job["out"]).write_text(json.dumps(result))


def trial_row(t) -> dict:
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": t.params,
        "duration_s": t.duration.total_seconds() if t.duration else None,
        "last_step": max(t.intermediate_values) if t.intermediate_values else None,
    }


# --------------------------------------------------------------------------------------------
# Parent


def search_space(opts) -> tuple[dict, dict]:
    """(searched params in hpsearch's order, fixed TrainingArguments for the others)."""
    chosen = [p.strip() for p in opts.params.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARAMS))
    if unknown or not chosen:
        sys.exit(f"--params: {unknown or 'empty'}; choose from {', '.join(PARAMS)}")
    full = {
        "learning_rate": {"type": "float", "low": opts.lr_low, "high": opts.lr_high, "log": True},
        "per_device_train_batch_size": {"type": "categorical", "choices": list(opts.batch_sizes)},
        "optim": {"type": "categorical", "choices": list(opts.optims)},
    }
    fixed_values = {
        "learning_rate": opts.lr_fixed,
        "per_device_train_batch_size": opts.batch_sizes[0],
        "optim": opts.optims[0],
    }
    search = {name: full[name] for name in PARAMS if name in chosen}
    fixed = {name: fixed_values[name] for name in PARAMS if name not in chosen}
    return search, fixed


def sampler_options(opts) -> dict:
    return {"seed": opts.sampler_seed, "n_startup_trials": opts.n_startup_trials, "multivariate": opts.multivariate}


def warmup_steps(opts, n_train: int, search: dict, fixed: dict) -> int:
    if opts.n_warmup_steps is not None:
        return opts.n_warmup_steps
    return math.ceil(n_train * opts.epochs / 4)  # a quarter of a trial's training samples (the progress axis)


def study_file(path: Path, data_dir: Path, storage: str, opts, search: dict, fixed: dict, n_warmup: int) -> dict:
    import yaml

    def raw(spec):
        return (
            spec["choices"] if spec["type"] == "categorical" else {k: spec[k] for k in ("type", "low", "high", "log")}
        )

    study = {
        **common.study_head(STUDY_NAME, data_dir, opts.max_length),
        "search": {name: raw(spec) for name, spec in search.items()},
        "train": {
            "num_train_epochs": opts.epochs,
            "per_device_eval_batch_size": opts.eval_batch_size,
            "seed": opts.seed,
            **fixed,
        },
        "evaluation": {
            "every": opts.hpsearch_every or opts.eval_steps,
            **({"subsample": opts.subsample} if opts.subsample else {}),
        },
        "sampler": {"type": "tpe", **sampler_options(opts)},
        "budget": {"n_trials": opts.trials},
        "storage": storage,
    }
    if opts.length_split is not None:
        study["data"]["length_split"] = opts.length_split
    if opts.pruner is not None:  # else the study file has no pruner key: hpsearch's default pruner
        study["pruner"] = opts.pruner
    elif opts.pruner_startup_trials is not None:
        study["pruner"] = {"type": "median", "n_startup_trials": opts.pruner_startup_trials, "n_warmup_steps": n_warmup}
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return study


def summarize_side(total: float, trials: list[dict], best: float | None, pruner: str) -> dict:
    states = [t["state"] for t in trials]
    complete = [t["duration_s"] for t in trials if t["state"] == "COMPLETE"]
    return {
        "total_s": total,
        "best_value": best,
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "median_complete_trial_s": statistics.median(complete) if complete else None,
        "pruner": pruner,
        "trials": trials,
    }


def run_hpsearch(opts, work: Path, data_dir: Path, search: dict, fixed: dict, n_warmup: int) -> dict:
    import optuna

    storage = f"sqlite:///{work / 'study.db'}"
    study_path = work / "study.yaml"
    study_file(study_path, data_dir, storage, opts, search, fixed, n_warmup)
    total = common.run_cli(opts, study_path, work)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    trials = [trial_row(t) for t in study.get_trials()]
    best = max((t["value"] for t in trials if t["state"] == "COMPLETE"), default=None)
    stored = study.user_attrs["spec"]["pruner"]
    pruner = ", ".join(f"{k}={v}" for k, v in stored.items() if k != "type")
    return summarize_side(total, trials, best, f"{stored['type']}({pruner}) [study file or hpsearch's default]")


def run_hf(opts, work: Path, data_dir: Path, search: dict, fixed: dict) -> dict:
    job = {
        "data": str(data_dir),
        "max_length": opts.max_length,
        "search": search,
        "args": {
            "eval_strategy": "steps",
            "eval_steps": opts.eval_steps,
            "num_train_epochs": opts.epochs,
            "per_device_eval_batch_size": opts.eval_batch_size,
            "seed": opts.seed,
            "save_strategy": opts.hf_save_strategy,
            "report_to": "none",
            "disable_tqdm": True,
            **fixed,
        },
        "n_trials": opts.trials,
        "sampler": sampler_options(opts),
        "out": str(work / "hf.json"),
    }
    total = common.run_child(opts, str(Path(__file__).resolve()), "--hf-child", job, work, "hf")
    out = json.loads((work / "hf.json").read_text())
    if out["pruner"] != "MedianPruner":
        print(f"warning: HF side got {out['pruner']}, not optuna's default MedianPruner", file=sys.stderr)
    return summarize_side(total, out["trials"], out["best_value"], HF_DEFAULT_PRUNER)


def fmt_params(params: dict) -> str:
    short = {"learning_rate": "lr", "per_device_train_batch_size": "bs", "optim": "opt"}
    return " ".join(
        f"{short.get(k, k)}={v:.3g}" if isinstance(v, float) else f"{short.get(k, k)}={v}" for k, v in params.items()
    )


def same_params(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(math.isclose(a[k], b[k], rel_tol=1e-9) if isinstance(a[k], float) else a[k] == b[k] for k in a)


def time_to(trials: list[dict], target: float) -> float | None:
    """Seconds of trial time (durations summed in trial order) until a completed trial first reached
    `target` (eval_accuracy, maximized); None when none did."""
    spent = 0.0
    for t in trials:
        spent += t["duration_s"]
        if t["state"] == "COMPLETE" and t["value"] is not None and t["value"] >= target:
            return spent
    return None


def to_common_best(run: dict) -> dict:
    """Each side's trial time until its best first reached the lower of the two final bests (a target both
    reached, so neither side is judged on a value only the other found), and their ratio, hpsearch / HF."""
    h, f = run["hpsearch"], run["hf"]
    if h["best_value"] is None or f["best_value"] is None:
        return {"target": None, "hpsearch_s": None, "hf_s": None, "ratio": None}
    target = min(h["best_value"], f["best_value"])
    h_s, f_s = time_to(h["trials"], target), time_to(f["trials"], target)
    return {"target": target, "hpsearch_s": h_s, "hf_s": f_s, "ratio": h_s / f_s if h_s and f_s else None}


def summarize(paths: list[Path]) -> str:
    """The time-to-a-common-best reading of stored results, one row per run, and the median ratio."""
    lines = [
        "| result | common best | hpsearch trial s to it | HF trial s to it | ratio | whole-command ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            c = to_common_best(run)
            ratios.append(c["ratio"])
            whole = run["hpsearch"]["total_s"] / run["hf"]["total_s"]
            lines.append(
                f"| {path.name} | {c['target']:.4f} | {c['hpsearch_s']:.1f} | {c['hf_s']:.1f} | {c['ratio']:.3f} "
                f"| {whole:.3f} |"
            )
    lines.append(f"\nmedian ratio to the common best: {statistics.median(ratios):.3f}")
    return "\n".join(lines)


def report(runs: list[dict], opts, n_warmup: int) -> tuple[str, dict]:
    def med(side, k):
        values = [r[side][k] for r in runs if r[side][k] is not None]
        return statistics.median(values) if values else None

    h_total, f_total = med("hpsearch", "total_s"), med("hf", "total_s")
    h_trial, f_trial = med("hpsearch", "median_complete_trial_s"), med("hf", "median_complete_trial_s")
    common_ratios = [c for r in runs if (c := to_common_best(r)["ratio"]) is not None]
    summary = {
        "hpsearch_total_s": h_total,
        "hf_total_s": f_total,
        "total_ratio": statistics.median(r["hpsearch"]["total_s"] / r["hf"]["total_s"] for r in runs),
        "hpsearch_median_complete_trial_s": h_trial,
        "hf_median_complete_trial_s": f_trial,
        "to_common_best_ratio": statistics.median(common_ratios) if common_ratios else None,
    }
    last = runs[-1]
    h, f = last["hpsearch"], last["hf"]
    startup = min(opts.n_startup_trials, len(h["trials"]), len(f["trials"]))
    same = [
        same_params(a["params"], b["params"]) for a, b in zip(h["trials"][:startup], f["trials"][:startup], strict=True)
    ]
    summary["startup_trials_same_params"] = all(same)

    def num(x, spec=".2f"):
        return "-" if x is None else format(x, spec)

    trial_ratio = h_trial / f_trial if h_trial and f_trial else None
    lines = [
        f"hpsearch vs Trainer.hyperparameter_search, {opts.trials} trials, median over {opts.repeats} repeat(s); "
        "ratio = hpsearch / HF",
        "",
        "| measure | hpsearch | HF hyperparameter_search | ratio |",
        "|---|---:|---:|---:|",
        f"| wall, whole command (s) | {num(h_total)} | {num(f_total)} | {summary['total_ratio']:.3f} |",
        f"| median completed trial (s) | {num(h_trial)} | {num(f_trial)} | {num(trial_ratio, '.3f')} |",
        f"| best eval_accuracy | {num(h['best_value'], '.4f')} | {num(f['best_value'], '.4f')} | |",
        f"| complete / pruned / failed | {h['complete']} / {h['pruned']} / {h['failed']} "
        f"| {f['complete']} / {f['pruned']} / {f['failed']} | |",
        "",
        f"- pruner, hpsearch: {h['pruner']}",
        f"- pruner, HF: {f['pruner']} (hyperparameter_search passes none to optuna.create_study)",
        f"- sampler, both: TPESampler({', '.join(f'{k}={v}' for k, v in sampler_options(opts).items())}); "
        f"first {startup} (startup) trials drew the same params: {'yes' if all(same) else 'NO'}",
        "",
        "| trial | hpsearch params | state | acc | HF params | state | acc |",
        "|---:|---|---|---:|---|---|---:|",
    ]
    for i in range(max(len(h["trials"]), len(f["trials"]))):
        cells = []
        for side in (h, f):
            if i < len(side["trials"]):
                t = side["trials"][i]
                last_step = f" @{t['last_step']}" if t["state"] == "PRUNED" else ""
                cells += [fmt_params(t["params"]), t["state"].lower() + last_step, num(t["value"], ".4f")]
            else:
                cells += ["", "", ""]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    return "\n".join(lines), summary


def main(argv=None) -> None:
    opts = parse_args(argv)
    if opts.summarize:
        print(summarize(opts.summarize))
        return
    if opts.hf_child:
        hf_child(opts.hf_child)
        return
    search, fixed = search_space(opts)
    base = Path(tempfile.mkdtemp(prefix="hpsearch-bench-vs-hf-"))
    data_dir = base / "data"
    subset = common.write_subset(opts.data, data_dir, opts.train_samples, opts.eval_samples, opts.data_seed)
    n_warmup = warmup_steps(opts, subset["train_rows"], search, fixed)
    print(f"data: {subset}; search: {', '.join(search)}; fixed: {fixed or '-'}; work folder: {base}", flush=True)
    runs = common.alternate(
        opts,
        base,
        {
            "hpsearch": lambda work: run_hpsearch(opts, work, data_dir, search, fixed, n_warmup),
            "hf": lambda work: run_hf(opts, work, data_dir, search, fixed),
        },
    )
    table, summary = report(runs, opts, n_warmup)
    print("\n" + table)
    details = {"data": subset, "search": search, "fixed": fixed, "hpsearch_n_warmup_steps": n_warmup}
    common.write_result(opts, base, "vs_hyperparameter_search", details, runs, summary, table)


if __name__ == "__main__":
    main()
