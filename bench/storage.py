"""Storage time per trial: SQLite, PostgreSQL, and PostgreSQL through the gRPC proxy, with 1 to many writers.

No training: each simulated trial makes exactly the storage calls a worker makes for a real one,
through hpsearch's own functions -- the budget check (`Budget.next_step`), `study.ask()`, the race
guard (`worker.skip_reason`), three suggested params, one `trial.report` per evaluation, the trial's
record written by `trial_record.save_record` (the real attributes: full TrainingArguments, learning curve,
timings), `study.tell`, and the progress callback's read of the best trial; params are drawn by a random
sampler, so a sampler's own model (TPE's fit over every trial) is not timed. Heartbeat writes (one per
`heartbeat.interval`, 30 s by default) are left out. Every storage is opened by `storage.open_storage`
(SQLite: WAL, busy timeout). PostgreSQL is a real server started for the run (tests/pgserver.py:
Debian's postgresql, fsync off as in the tests), on loopback. A `grpc+` side puts `hpsearch
storage-server` (Optuna's gRPC proxy, a process of its own with --server-threads threads) in front of
that database, and the writers use grpc://127.0.0.1:PORT.

Each side runs P processes at once, each doing T trials on one shared study (they start timing together,
once all have imported and opened the study); the figure is milliseconds per trial (median and 90th
percentile over all trials of all processes) and the wall time for all P x T trials. The order of the
sides rotates over --repeats. With --block B, it also prints the median ms/trial of each block of B
trial numbers: how a trial's cost grows with the trials already stored.

    .venv/bin/python bench/storage.py --processes 1 4 --trials 100 --repeats 2
    .venv/bin/python bench/storage.py --sides postgresql grpc+postgresql --processes 1 4 16 64 --trials 100
    .venv/bin/python bench/storage.py --sides postgresql grpc+postgresql --processes 1 --trials 10000 --block 1000 \
        --repeats 1 --out bench/results/storage_growth.json

A simulated writer is a whole Python process with transformers imported (~0.5 GB): 64 need ~32 GB of memory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SIDES = ("sqlite", "postgresql", "grpc+sqlite", "grpc+postgresql")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sides", nargs="+", choices=SIDES, default=["sqlite", "postgresql"], help="storages to compare")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 4], help="writers at once")
    p.add_argument("--trials", type=int, default=100, help="trials per writer")
    p.add_argument("--evaluations", type=int, default=10, help="intermediate values reported per trial")
    p.add_argument("--repeats", type=int, default=2, help="runs of each side; the order rotates")
    p.add_argument("--block", type=int, help="also report the median ms/trial of each block of this many trials")
    p.add_argument("--server-threads", type=int, default=10, help="the storage server's threads (grpc+ sides)")
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


def writer(url: str, trials: int, evaluations: int, rec: dict, ready, out) -> None:
    try:
        import optuna

        from hpsearch.orchestration import worker
        from hpsearch.orchestration.progress import Progress
        from hpsearch.results.storage import open_storage

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # Random sampling: what is timed is the storage, not a sampler's model (TPE's fit grows with the
        # trials whatever the storage). The budget check and the progress line read every trial, as a worker's do.
        sampler = optuna.samplers.RandomSampler(seed=0)
        study = optuna.load_study(study_name="bench", storage=open_storage(url, create=False), sampler=sampler)
        budget = worker.Budget(total=None, device_hours=None)
        progress = Progress("accuracy", quiet=True)
    except Exception as exc:
        out.put(_failure(exc))
        ready.abort()  # the others (and the parent) stop at once rather than wait for this one
        return
    times = []
    try:
        ready.wait()  # every writer has imported and opened the study: they start together
    except threading.BrokenBarrierError:
        out.put("another writer failed before the start")
        return
    try:
        _trials(study, budget, progress, rec, trials, evaluations, times)
    except Exception as exc:  # e.g. the database refuses one more connection
        out.put(_failure(exc))
        return
    out.put(times)


def _failure(exc: Exception) -> str:
    """The first line of what went wrong, e.g. PostgreSQL's `sorry, too many clients already`."""
    chain = []
    while exc is not None and len(chain) < 10:  # Optuna's StorageInternalError wraps the database's own error
        chain.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    lines = [line.strip() for text in chain for line in text.splitlines() if line.strip()]
    return next((line for line in lines if "FATAL" in line), lines[0] if lines else "unknown")[:300]


def _trials(study, budget, progress, rec: dict, trials: int, evaluations: int, times: list) -> None:
    from hpsearch.orchestration import worker
    from hpsearch.training.trial_record import save_record

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
        save_record(trial, rec, progress)
        frozen = study.tell(trial, 0.5)
        progress.finished(study, frozen)
        times.append((trial.number, time.perf_counter() - started))


def run_side(url: str, processes: int, opts) -> dict:
    import optuna

    from hpsearch.results.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(study_name="bench", storage=open_storage(url, create=True), direction="maximize")
    # Forked from a parent that has imported what a writer needs (torch and transformers with it): 64
    # spawned writers would each load them again (about 0.5 GB apiece); forked ones share those pages.
    import hpsearch.orchestration.worker  # noqa: F401
    import hpsearch.training.trial_record  # noqa: F401

    rec = record()
    ctx = mp.get_context("fork")
    out, ready = ctx.Queue(), ctx.Barrier(processes + 1)
    procs = [
        ctx.Process(target=writer, args=(url, opts.trials, opts.evaluations, rec, ready, out)) for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=1800)  # a writer that failed before the start breaks it, not hangs it
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, str)]
    if failures:  # a side that cannot serve this many writers: what it said, not a crash of the benchmark
        done = sum(len(r) for r in results if not isinstance(r, str))
        return {"failed": failures[0], "writers_failed": len(failures), "trials": done, "wall_s": wall}
    numbered = [t for r in results for t in r]
    times = sorted(t for _, t in numbered)
    result = {
        "median_ms": 1000 * statistics.median(times),
        "p90_ms": 1000 * times[round(0.9 * (len(times) - 1))],
        "wall_s": wall,
        "trials": len(times),
    }
    if opts.block:
        blocks: dict[int, list[float]] = {}
        for number, t in numbered:
            blocks.setdefault(number // opts.block, []).append(t)
        result["block_median_ms"] = [1000 * statistics.median(blocks[b]) for b in sorted(blocks)]
    return result


def storage_server(url: str, threads: int, log: Path):
    """`hpsearch storage-server` in front of `url` on a free port: (process, its grpc:// URL)."""
    command = [sys.executable, "-m", "hpsearch.cli", "storage-server", "--storage", url, "--port", "0"]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*command, "--threads", str(threads)], stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT
        )
    first = proc.stdout.readline().strip()
    if not first.startswith("storage server: grpc://"):
        proc.kill()
        raise SystemExit(f"the storage server did not start: {first} {log.read_text()[-2000:]}")
    return proc, first.removeprefix("storage server: ")


def side_url(side: str, name: str, server, tmp: Path) -> str:
    backend = side.removeprefix("grpc+")
    if backend == "sqlite":
        return f"sqlite:///{tmp / name}.db"
    from tests.pgserver import create_database

    create_database(server, name)
    return server.url_for(name)


def run_one(side: str, name: str, processes: int, server, tmp: Path, opts) -> dict:
    url = side_url(side, name, server, tmp)
    if not side.startswith("grpc+"):
        return run_side(url, processes, opts)
    proc, address = storage_server(url, opts.server_threads, tmp / f"{name}.server.log")
    try:
        return run_side(address, processes, opts)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main(argv=None) -> None:
    from tests.pgserver import postgres_server

    opts = parse_args(argv)
    sides = opts.sides
    runs = []
    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="hpsearch-bench-storage-") as tmp:
        for r in range(opts.repeats):
            for processes in opts.processes:
                order = sides[r % len(sides) :] + sides[: r % len(sides)]
                run = {"repeat": r, "processes": processes}
                for i, side in enumerate(order):
                    name = f"r{r}p{processes}s{i}"
                    run[side] = run_one(side, name, processes, server, Path(tmp), opts)
                    print(f"repeat {r + 1}, {processes} writer(s), {side}: {run[side]}", flush=True)
                runs.append(run)
    table = "\n".join(summary_lines(runs, opts) + (block_lines(runs, opts) if opts.block else []))
    print("\n" + table)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()}
    opts.out.write_text(json.dumps({"options": options, "runs": runs, "table": table}, indent=1))
    print(f"wrote {opts.out}")


def summary_lines(runs: list[dict], opts) -> list[str]:
    """One row per number of writers: each side's median (p90) ms/trial and wall time, the ratio to the first side."""
    first, sides = opts.sides[0], opts.sides
    lines = [
        f"{opts.trials} trials per writer, {opts.evaluations} evaluations each; medians over {opts.repeats} repeat(s)",
        "",
        "| writers | "
        + " | ".join(f"{s} ms/trial (p90)" for s in sides)
        + "".join(f" | {s} / {first}" for s in sides[1:])
        + " | "
        + " | ".join(f"wall s {s}" for s in sides)
        + " |",
        "|---:" * (1 + 2 * len(sides) + len(sides) - 1) + "|",
    ]
    for processes in opts.processes:
        mine = [r for r in runs if r["processes"] == processes]

        def med(side, key, mine=mine):
            values = [r[side][key] for r in mine if "failed" not in r[side]]
            return statistics.median(values) if values else None

        def failed(side, mine=mine):
            said = [r[side]["failed"] for r in mine if "failed" in r[side]]
            return f"failed in {len(said)}/{len(mine)}: {said[0]}" if said else ""

        def cell(side):
            ms = med(side, "median_ms")
            return f"{failed(side)}" if ms is None else f"{ms:.1f} ({med(side, 'p90_ms'):.1f}) {failed(side)}".strip()

        def ratio(side):
            a, b = med(side, "median_ms"), med(first, "median_ms")
            return "-" if a is None or b is None else f"{a / b:.2f}"

        cells = [cell(s) for s in sides]
        cells += [ratio(s) for s in sides[1:]]
        cells += [f"{med(s, 'wall_s'):.1f}" if med(s, "wall_s") is not None else "-" for s in sides]
        lines.append(f"| {processes} | " + " | ".join(cells) + " |")
    return lines


def block_lines(runs: list[dict], opts) -> list[str]:
    """Median ms/trial of each block of --block trial numbers (the first repeat of each number of writers)."""
    lines = ["", f"median ms/trial by trial number, blocks of {opts.block}", ""]
    for processes in opts.processes:
        run = next(r for r in runs if r["processes"] == processes)
        n_blocks = max(len(run[s]["block_median_ms"]) for s in opts.sides)
        lines.append(f"| {processes} writer(s): trials | " + " | ".join(opts.sides) + " |")
        lines.append("|---:" * (1 + len(opts.sides)) + "|")
        for b in range(n_blocks):
            cells = [run[s]["block_median_ms"][b] for s in opts.sides]
            span = f"{b * opts.block}-{(b + 1) * opts.block - 1}"
            lines.append(f"| {span} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
