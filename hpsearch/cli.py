"""The `hpsearch` command: thin verbs over spec, controller, status and export.

    hpsearch validate studies/quickstart.yaml
    hpsearch run studies/quickstart.yaml [--set sampler.type=random] [--n-trials 4] [--workers auto] [--quiet]
    hpsearch run studies/quickstart.yaml --enqueue configs.yaml --warm-start OTHER [--warm-start-top 5]
    hpsearch worker studies/quickstart.yaml --storage postgresql://USER@HOST/DB
    hpsearch launch slurm studies/quickstart.yaml --workers 8 --gpus-per-worker 1 [--dry-run]
    hpsearch status studies/quickstart.yaml
    hpsearch confirm studies/quickstart.yaml [--top-k 3] [--seeds 3] [--workers N]
    hpsearch simulate studies/quickstart.yaml --set pruner.type=hyperband --set pruner.min_resource=120
    hpsearch export studies/quickstart.yaml --format yaml --out best.yaml
    hpsearch train best.yaml --out model/
    hpsearch list studies/quickstart.yaml
    hpsearch report studies/quickstart.yaml [--out dashboards/quickstart.html]
    hpsearch dashboard studies/quickstart.yaml [--port 8080]
    hpsearch storage-server --storage postgresql://USER@HOST/DB [--host 0.0.0.0] [--port 13000]

Exit status: 0 success, 1 runtime failure, 2 invalid input, 3 the GPU failed, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from hpsearch.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK


def _schema(args) -> int:
    from hpsearch.spec.training_schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _spec(args):
    from hpsearch.spec import load_spec

    overrides = list(args.overrides)
    if getattr(args, "n_trials", None) is not None:
        overrides.append(f"budget.n_trials={args.n_trials}")
    return load_spec(args.study, overrides)


def _validate(args) -> int:
    from hpsearch.orchestration import preflight

    spec = _spec(args)
    print(preflight.describe(spec, preflight.check(spec, args.storage)))
    return EXIT_OK


def _run(args) -> int:
    from hpsearch.orchestration import controller, pool, warm_start

    spec = _spec(args)
    # Configs to run first (--enqueue, --warm-start): read and checked now, queued once the study exists.
    seeds = warm_start.plan(
        spec, args.storage, args.enqueue, args.warm_start, args.warm_start_top, args.warm_start_storage
    )
    workers = pool.count(args.workers, spec.resources.devices_per_trial)
    # What each worker process needs to build the same spec (the storage goes by environment).
    argv = [args.study, *(f"--set={o}" for o in args.overrides), *(["--quiet"] if args.quiet else [])]
    if args.n_trials is not None:
        argv.append(f"--set=budget.n_trials={args.n_trials}")
    return controller.run(spec, args.storage, quiet=args.quiet, workers=workers, argv=argv, seeds=seeds)


def _worker(args) -> int:
    from hpsearch.orchestration import confirm, controller, pool

    if args.child:
        pool.die_with_parent()
    spec = _spec(args)
    pool.count("1", spec.resources.devices_per_trial)  # refuses more devices per trial than the GPUs here
    if args.confirm:
        spec = confirm.joining_spec(spec, args.storage)
    return controller.join(spec, args.storage, quiet=args.quiet, summary=not args.child)


def _launch(args) -> int:
    from hpsearch.orchestration import slurm
    from hpsearch.results.storage import storage_url

    spec = _spec(args)
    launch = slurm.Launch(
        study=Path(args.study).resolve(),
        name=spec.name,
        workers=args.workers,
        storage_url=storage_url(spec, args.storage),
        overrides=tuple(args.overrides),
        gpus_per_worker=args.gpus_per_worker,
        devices_per_trial=spec.resources.devices_per_trial,
        partition=args.partition,
        time=args.time,
        sbatch_args=tuple(args.sbatch_args),
        workdir=Path.cwd(),
    )
    slurm.check(launch)
    script = slurm.script(launch)
    if args.dry_run:
        print(script, end="")
        return EXIT_OK
    job = slurm.submit(launch, script)
    flag_only = storage_url(spec) != launch.storage_url  # status needs --storage
    print(slurm.describe(launch, job, args.study, storage_flag=flag_only))
    return EXIT_OK


def _confirm(args) -> int:
    from hpsearch.orchestration import confirm, controller, pool, worker
    from hpsearch.results import confirmation, storage

    worker.quiet_libraries()  # before the confirmation study is created: no Optuna log line for it
    spec = _spec(args)
    url = storage.storage_url(spec, args.storage, write=True)
    confirm_spec = confirm.plan(spec, url, args.top_k, args.seeds, args.trials, print)
    argv = [args.study, *(f"--set={o}" for o in args.overrides), "--confirm", *(["--quiet"] if args.quiet else [])]
    workers = pool.count(args.workers, confirm_spec.resources.devices_per_trial)
    status = controller.run(confirm_spec, url, quiet=args.quiet, workers=workers, argv=argv)
    print(confirmation.table(confirmation.summarize(storage.load_study(spec, url)), spec.objective.metric))
    return status


def _study(args):
    from hpsearch.results.storage import load_study, storage_url

    spec = _spec(args)
    url = storage_url(spec, args.storage)
    return spec, url, load_study(spec, url)


def _names(spec, study) -> tuple[str, str | None]:
    """The metric and the cost (or None) the study was run with, which label its stored values."""
    from hpsearch.results.export import objective_names

    names = objective_names(study, {"metric": spec.objective.metric, "cost": spec.objective.cost})
    return names[0], names[1] if len(names) > 1 else None


def _status(args) -> int:
    from hpsearch.results import confirmation, status

    spec, _, study = _study(args)
    confirmed = confirmation.summarize(study)
    metric, cost = _names(spec, study)
    if args.format == "json":
        print(json.dumps(status.rows(study, confirmed), indent=2))
    else:
        print(status.table(study, metric, cost))
        if confirmed is not None:
            print(confirmation.table(confirmed, metric))
    return EXIT_OK


def _simulate(args) -> int:
    from hpsearch.results import simulate

    spec, _, study = _study(args)
    sim = simulate.of_study(spec, study, args.top_k)
    print(json.dumps(sim.to_dict(), indent=2) if args.format == "json" else simulate.table(sim, _names(spec, study)[0]))
    return EXIT_OK


def _export(args) -> int:
    from hpsearch.results import confirmation, export

    fmt = export.file_format(args.out, args.format)
    spec, url, study = _study(args)
    confirmed = confirmation.summarize(study)
    trial = export.pick_trial(study, args.trial, confirmed)
    arguments, manifest = export.build(study, trial, url, confirmed)
    out = args.out or Path(spec.source).resolve().parent / f"{spec.name}.best" / f"best.{fmt}"
    written, removed = export.write(arguments, manifest, out, fmt)
    print(f"trial {trial.number} ({export.describe_values(study, trial)}): wrote {', '.join(map(str, written))}")
    for path in removed:  # best.yaml's when this export wrote best.json or best.yml: of the same name, not format
        print(f"removed {path}: an earlier export's, replaced by {path.with_suffix(written[0].suffix).name}")
    if confirmed is not None:
        print(confirmation.table(confirmed, spec.objective.metric))
    print(f"retrain it with: hpsearch train {written[0]}")
    return EXIT_OK


def _list(args) -> int:
    from hpsearch.errors import SpecError
    from hpsearch.results import status
    from hpsearch.results.storage import checked_url, open_storage, storage_url

    if args.storage:
        url = checked_url(args.storage, "hpsearch list", "--storage")
    elif args.study:
        url = storage_url(_spec(args))
    else:
        raise SpecError("hpsearch list", "", "give a study file or --storage URL")
    rows = status.studies(open_storage(url, create=False, read_only=True))
    print(json.dumps(rows, indent=2) if args.format == "json" else status.studies_table(rows))
    return EXIT_OK


def _report(args) -> int:
    from hpsearch.results.report import html as report_html

    spec, _, study = _study(args)
    out = report_html.write(study, args.out or Path("dashboards") / f"{spec.name}.html")
    print(f"wrote {out}")
    return EXIT_OK


def _dashboard(args) -> int:
    from hpsearch.results import dashboard
    from hpsearch.results.storage import storage_url

    spec = _spec(args)
    return dashboard.serve(storage_url(spec, args.storage), args.host, args.port, study_name=spec.name)


def _storage_server(args) -> int:
    from hpsearch.results import storage_server
    from hpsearch.results.storage import given_storage

    url, field = given_storage(args.storage) or ("", "--storage")
    return storage_server.serve(url, args.host, args.port, args.threads, field=field)


def _train(args) -> int:
    from hpsearch.orchestration import retrain, worker

    worker.quiet_libraries()
    print(retrain.describe(retrain.retrain(args.best, args.out, args.all_data, args.tolerance, args.merge)))
    return EXIT_OK


VERBS = {
    "validate": _validate,
    "run": _run,
    "worker": _worker,
    "launch": _launch,
    "confirm": _confirm,
    "status": _status,
    "simulate": _simulate,
    "export": _export,
    "list": _list,
    "report": _report,
    "dashboard": _dashboard,
    "storage-server": _storage_server,
    "train": _train,
    "schema": _schema,
}


# The verbs whose work the same command picks up where it stopped (the study keeps what was done).
RESUMABLE = {"run", "worker", "confirm", "launch"}
# The servers: SIGTERM stops them as Ctrl-C does from their first moment, not only once they serve (their
# start-up, loading the study file and libraries, takes seconds, and a signal then would kill them: 143).
SERVERS = {"dashboard", "storage-server"}


def main(argv: list[str] | None = None) -> int:
    from hpsearch.cli_args import parse
    from hpsearch.results.stopping import sigterm_stops

    args = parse(argv)
    try:
        with sigterm_stops() if args.verb in SERVERS else contextlib.nullcontext():
            return VERBS[args.verb](args)
    except KeyboardInterrupt:
        resumes = args.verb in RESUMABLE  # a server or a reading verb has nothing to resume
        print("\ninterrupted" + (": run the same command again to resume" if resumes else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `hpsearch status STUDY | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail again at exit's flush
        return EXIT_FAILURE
    except Exception as exc:
        if getattr(exc, "exit_status", None):  # hpsearch.errors: SpecError, NotFound (2), DeviceFailure (3)
            print(f"error: {exc.args[0] if isinstance(exc, LookupError) and exc.args else exc}", file=sys.stderr)
            return exc.exit_status
        if os.environ.get("HPSEARCH_DEBUG"):
            raise
        if callable(getattr(exc, "code", None)) and callable(getattr(exc, "details", None)):  # grpc.RpcError
            reason = f"the storage server failed or went away ({exc.code().name}: {exc.details()})"
            print(f"error: {reason} (set HPSEARCH_DEBUG=1 for the traceback)", file=sys.stderr)
            return EXIT_FAILURE
        print(f"error: {type(exc).__name__}: {exc} (set HPSEARCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
