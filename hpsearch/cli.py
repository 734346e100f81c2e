"""The `hpsearch` command: thin verbs over spec, controller, status and export.

    hpsearch validate studies/quickstart.yaml
    hpsearch run studies/quickstart.yaml [--set sampler.type=random] [--n-trials 4] [--workers auto] [--quiet]
    hpsearch run studies/quickstart.yaml --enqueue configs.yaml --warm-start OTHER [--warm-start-top 5]
    hpsearch worker studies/quickstart.yaml --storage postgresql://USER@HOST/DB
    hpsearch status studies/quickstart.yaml
    hpsearch simulate studies/quickstart.yaml --set pruner.type=hyperband --set pruner.min_resource=120
    hpsearch export studies/quickstart.yaml --format yaml --out best.yaml
    hpsearch train best.yaml --out model/
    hpsearch list studies/quickstart.yaml
    hpsearch report studies/quickstart.yaml [--out dashboards/quickstart.html]
    hpsearch dashboard studies/quickstart.yaml [--port 8080]

Exit status: 0 success, 1 runtime failure, 2 invalid input, 3 the GPU failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hpsearch.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK


def _parser() -> argparse.ArgumentParser:
    from hpsearch import __version__

    parser = argparse.ArgumentParser(prog="hpsearch", description="Hyperparameter search for fine-tuning.")
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def study_verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_text, description=help_text)
        p.add_argument("study", metavar="STUDY", help="the study file, e.g. studies/quickstart.yaml")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a study-file key, e.g. --set data.path=DIR --set sampler.type=random",
        )
        p.add_argument(
            "--storage",
            default=os.environ.get("HPSEARCH_STORAGE"),
            help="SQLAlchemy URL of the study storage (default: $HPSEARCH_STORAGE, else STUDY folder/NAME.db)",
        )
        return p

    study_verb("validate", "check a study file, its data and model without writing anything")
    run = study_verb("run", "run the sweep, or resume it where it stopped")
    run.add_argument("--n-trials", type=int, help="total trials of the study (overrides budget.n_trials)")
    run.add_argument("--quiet", "-q", action="store_true", help="print only the final summary")
    run.add_argument(
        "--workers",
        type=_workers,
        default="1",
        metavar="N|auto",
        help="worker processes on this machine (auto: one per GPU, else one per 4 CPU cores); default 1",
    )
    run.add_argument(
        "--enqueue",
        type=Path,
        metavar="FILE",
        help="run these configs first: a YAML or JSON list of {param: value} (or configs: [...]); "
        "params left out are sampled",
    )
    run.add_argument(
        "--warm-start",
        metavar="OTHER",
        help="run the best completed configs of study OTHER first, clipped into this study's space",
    )
    run.add_argument("--warm-start-top", type=int, metavar="K", help="how many of OTHER's best trials (default 5)")
    run.add_argument("--warm-start-storage", metavar="URL", help="OTHER's storage (default: this study's)")
    join = study_verb("worker", "join the study as one more worker (any machine that reaches its storage)")
    join.add_argument("--quiet", "-q", action="store_true", help="print only the final summary")
    join.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # started by `run --workers`
    status = study_verb("status", "show a table of the study's trials")
    status.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    export = study_verb("export", "write the best trial's training arguments and a manifest")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml", help="file format")
    export.add_argument(
        "--out",
        type=Path,
        help="output file (default: STUDY folder/NAME.best/best.FORMAT); the manifest and a JSON go beside it",
    )
    export.add_argument(
        "--trial", type=int, help="export this completed trial instead of the best one (needed with objective.cost)"
    )
    sim = study_verb("simulate", "replay the study's stored curves under the pruner of the file and --set")
    sim.add_argument("--top-k", type=int, default=3, help="how many of the best trials must survive (default 3)")
    sim.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    report = study_verb("report", "write a self-contained HTML report of the study")
    report.add_argument("--out", type=Path, help="HTML file (default: dashboards/NAME.html)")
    dash = study_verb("dashboard", "open optuna-dashboard on the study's storage (safe while a sweep runs)")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    dash.add_argument("--port", type=_port, default=8080, help="port, 0-65535 (0 picks a free one)")
    listing = verbs.add_parser("list", help="list every study in a storage with its progress")
    listing.add_argument("study", metavar="STUDY", nargs="?", help="a study file whose storage to list")
    listing.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    listing.add_argument("--storage", help="SQLAlchemy URL of the storage (instead of STUDY)")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    train = verbs.add_parser("train", help="retrain an exported config and save the model and tokenizer")
    train.add_argument("best", metavar="BEST", type=Path, help="an exported config, e.g. studies/NAME.best/best.yaml")
    train.add_argument("--out", type=Path, help="model folder (default: BEST's folder/model)")
    all_data = "train on train + eval for the trial's number of steps (no held-out comparison)"
    train.add_argument("--all-data", action="store_true", help=all_data)
    train.add_argument(
        "--tolerance", type=float, default=0.01, help="largest metric difference that counts as matching the trial"
    )
    train.add_argument(
        "--merge", action="store_true", help="a LoRA trial: save the adapter merged into the model, not the adapter"
    )
    verbs.add_parser("schema", help="print the study file's JSON Schema (for an editor's YAML language server)")
    return parser


def _schema(args) -> int:
    from hpsearch.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _workers(text: str) -> str:
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (a whole number >= 1, or auto)")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return int(text)


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
    workers = pool.count(args.workers)
    # What each worker process needs to build the same spec (the storage goes by environment).
    argv = [args.study, *(f"--set={o}" for o in args.overrides), *(["--quiet"] if args.quiet else [])]
    if args.n_trials is not None:
        argv.append(f"--set=budget.n_trials={args.n_trials}")
    return controller.run(spec, args.storage, quiet=args.quiet, workers=workers, argv=argv, seeds=seeds)


def _worker(args) -> int:
    from hpsearch.orchestration import controller, pool

    if args.child:
        pool.die_with_parent()
    return controller.join(_spec(args), args.storage, quiet=args.quiet, summary=not args.child)


def _study(args):
    from hpsearch.results.storage import load_study, storage_url

    spec = _spec(args)
    url = storage_url(spec, args.storage)
    return spec, url, load_study(spec, url)


def _status(args) -> int:
    from hpsearch.results import status

    spec, _, study = _study(args)
    if args.format == "json":
        print(json.dumps(status.rows(study), indent=2))
    else:
        print(status.table(study, spec.objective.metric, spec.objective.cost))
    return EXIT_OK


def _simulate(args) -> int:
    from hpsearch.results import simulate

    spec, _, study = _study(args)
    sim = simulate.of_study(spec, study, args.top_k)
    print(json.dumps(sim.to_dict(), indent=2) if args.format == "json" else simulate.table(sim, spec.objective.metric))
    return EXIT_OK


def _export(args) -> int:
    from hpsearch.results import export

    spec, url, study = _study(args)
    trial = export.pick_trial(study, args.trial)
    arguments, manifest = export.build(study, trial, url)
    out = args.out or Path(spec.source).resolve().parent / f"{spec.name}.best" / f"best.{args.format}"
    written = export.write(arguments, manifest, out, args.format)
    print(f"trial {trial.number} ({export.describe_values(study, trial)}): wrote {', '.join(map(str, written))}")
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
    rows = status.studies(open_storage(url, create=False))
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


def _train(args) -> int:
    from hpsearch.orchestration import retrain, worker

    worker.quiet_libraries()
    print(retrain.describe(retrain.retrain(args.best, args.out, args.all_data, args.tolerance, args.merge)))
    return EXIT_OK


VERBS = {
    "validate": _validate,
    "run": _run,
    "worker": _worker,
    "status": _status,
    "simulate": _simulate,
    "export": _export,
    "list": _list,
    "report": _report,
    "dashboard": _dashboard,
    "train": _train,
    "schema": _schema,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return VERBS[args.verb](args)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if getattr(exc, "exit_status", None):  # hpsearch.errors: SpecError, NotFound (2), DeviceFailure (3)
            print(f"error: {exc.args[0] if isinstance(exc, LookupError) and exc.args else exc}", file=sys.stderr)
            return exc.exit_status
        if os.environ.get("HPSEARCH_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc} (set HPSEARCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
