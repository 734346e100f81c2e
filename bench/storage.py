"""Storage time per trial, SQLite against PostgreSQL, with 1 and with several writers at once.

No training: each simulated trial makes exactly the storage calls a worker makes for a real one,
through hpsearch's own functions -- the budget check (`Budget.next_step`), `study.ask()`, the race
guard (`worker.skip_reason`), three suggested params, one `trial.report` per evaluation, the trial's
record written by `trial._save_record` (the real attributes: full TrainingArguments, learning curve,
timings), `study.tell`, and the progress callback's read of the best trial. Heartbeat writes (one per
`heartbeat.interval`, 30 s by default) are left out. Both storages are opened by `storage.open_storage`
(SQLite: WAL, busy timeout). PostgreSQL is a real server started for the run (tests/pgserver.py:
Debian's postgresql, fsync off as in the tests), on loopback.

Each side runs P processes at once, each doing T trials on one shared study; the figure is
milliseconds per trial (median and 90th percentile over all trials of all processes) and the wall
time for all P x T trials. The order of the sides alternates over --repeats.

    .venv/bin/python bench/storage.py --processes 1 4 --trials 100 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 4], help="writers at once")
    p.add_argument("--trials", type=int, default=100, help="trials per writer")
    p.add_argument("--evaluations", type=int, default=10, help="intermediate values reported per trial")
    p.add_argument("--repeats", type=int, default=2, help="runs of each side; the order alternates")
    p.add_argument("--out", type=Path, default=RESULTS / "storage.json", help="where to write the JSON results")
    return p.parse_args(argv)


def record() -> dict:
    """A trial's record as hpsearch writes it (the same keys; values shaped like a real trial's)."""
    from transformers import TrainingArguments

    from hpsearch.training.trainer import DEFAULT_TRAINING_ARGUMENTS

    args = {**DEFAULT_TRAINING_ARGUMENTS, "learning_rate": 1e-4, "per_device_train_batch_size": 16, "use_cpu": True}
    everything = TrainingArguments(output_dir=tempfile.gettempdir(), **args).to_dict()
    curve = [
        {"step": 10 * i, "epoch": i / 10, "eval_loss": 1.0 / i, "eval_accuracy": 0.1 * i, "train_loss": 1.1 / i}
        for i in range(1, 11)
    ]
    return {
        "data_fingerprint": "0" * 16,
        "worker": "host:1234",
        "memory_baseline_mb": 500.0,
        "training_arguments": args,
        "seed": 42,
        "training_arguments_all": {k: v for k, v in everything.items() if k != "output_dir"},
        "device": "cpu",
        "curve": curve,
        "train_samples_per_second": 100.0,
        "train_loss": 0.5,
        "wall_time_s": 10.0,
        "device_seconds": 10.0,
        "steps_trained": 100,
        "max_steps": 100,
        "train_seconds": 9.0,
        "peak_memory_mb": 600.0,
        "memory_after_mb": 500.0,
    }


def writer(url: str, trials: int, evaluations: int, out) -> None:
    import optuna

    from hpsearch.orchestration import worker
    from hpsearch.orchestration.progress import Progress
    from hpsearch.results.storage import open_storage
    from hpsearch.training.trial import _save_record

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="bench", storage=open_storage(url, create=False))
    budget = worker.Budget(total=None, device_hours=None)
    progress = Progress("accuracy", quiet=True)
    rec = record()
    times = []
    for _ in range(trials):
        started = time.perf_counter()
        budget.next_step(study)
        trial = study.ask()
        worker.skip_reason(trial, total=None)
        trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
        trial.suggest_categorical("per_device_train_batch_size", [8, 16, 32])
        trial.suggest_categorical("optim", ["adamw_torch", "sgd"])
        for step in range(1, evaluations + 1):
            trial.report(0.1 * step, step * 10)
        _save_record(trial, rec, progress)
        frozen = study.tell(trial, 0.5)
        progress.finished(study, frozen)
        times.append(time.perf_counter() - started)
    out.put(times)


def run_side(url: str, processes: int, opts) -> dict:
    import optuna

    from hpsearch.results.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(study_name="bench", storage=open_storage(url, create=True), direction="maximize")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, opts.trials, opts.evaluations, out)) for _ in range(processes)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    times = [t for _ in procs for t in out.get()]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    times.sort()
    return {
        "median_ms": 1000 * statistics.median(times),
        "p90_ms": 1000 * times[int(0.9 * (len(times) - 1))],
        "wall_s": wall,
        "trials": len(times),
    }


def main(argv=None) -> None:
    from tests.pgserver import create_database, postgres_server

    opts = parse_args(argv)
    runs = []
    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="hpsearch-bench-storage-") as tmp:
        for r in range(opts.repeats):
            for processes in opts.processes:
                order = ["sqlite", "postgresql"] if r % 2 == 0 else ["postgresql", "sqlite"]
                run = {"repeat": r, "processes": processes}
                for side in order:
                    name = f"r{r}p{processes}"
                    if side == "sqlite":
                        url = f"sqlite:///{Path(tmp) / name}.db"
                    else:
                        create_database(server, name)
                        url = server.url_for(name)
                    run[side] = run_side(url, processes, opts)
                    print(f"repeat {r + 1}, {processes} writer(s), {side}: {run[side]}", flush=True)
                runs.append(run)
    lines = [
        f"{opts.trials} trials per writer, {opts.evaluations} evaluations each; medians over {opts.repeats} repeat(s)",
        "",
        "| writers | SQLite ms/trial (p90) | PostgreSQL ms/trial (p90) | PostgreSQL / SQLite "
        "| wall s SQLite | wall s PostgreSQL |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for processes in opts.processes:
        mine = [r for r in runs if r["processes"] == processes]

        def med(side, key, mine=mine):
            return statistics.median(r[side][key] for r in mine)

        summary[processes] = {f"{s}_{k}": med(s, k) for s in ("sqlite", "postgresql") for k in mine[0]["sqlite"]}
        lines.append(
            f"| {processes} | {med('sqlite', 'median_ms'):.1f} ({med('sqlite', 'p90_ms'):.1f}) | "
            f"{med('postgresql', 'median_ms'):.1f} ({med('postgresql', 'p90_ms'):.1f}) | "
            f"{med('postgresql', 'median_ms') / med('sqlite', 'median_ms'):.2f} | "
            f"{med('sqlite', 'wall_s'):.1f} | {med('postgresql', 'wall_s'):.1f} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()}
    opts.out.write_text(json.dumps({"options": options, "runs": runs, "summary": summary, "table": table}, indent=1))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
