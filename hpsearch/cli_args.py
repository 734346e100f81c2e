"""The command line's verbs, their flags and their help (argparse): what `hpsearch --help` shows."""

from __future__ import annotations

import argparse
import os
import typing
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (`error: hpsearch run: ...`, exit 2), as every other error
    of hpsearch; `--help` prints the usage. Subparsers are made of this class too."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see: {self.prog} --help)\n")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed; arguments no verb takes are refused naming the verb they were given to."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:
        verb = " ".join(v for v in (getattr(args, "verb", None), getattr(args, "target", None)) if v)
        p.prog = f"{p.prog} {verb}".strip()
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def parser() -> argparse.ArgumentParser:
    from hpsearch import __version__

    parser = _Parser(prog="hpsearch", description="Hyperparameter search for fine-tuning.")
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def study_verb(name: str, help_text: str, group=verbs) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help_text, description=help_text)
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
        help="worker processes on this machine (auto: one per GPU, else one per 4 CPU cores); default %(default)s",
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
    join.add_argument(
        "--confirm", action="store_true", help="run the trials `hpsearch confirm` queued, not the search's"
    )
    confirm = study_verb("confirm", "train the search's best configs again with new seeds; the winner is the best mean")
    # The defaults and bounds are the study file's confirm section's (spec.sections.ConfirmSpec), not restated here.
    confirm.add_argument(
        "--top-k", type=int, metavar="K", help="how many of the best configs (default: the study file's confirm.top_k)"
    )
    confirm.add_argument(
        "--seeds", type=int, metavar="S", help="new seeds per config (default: the study file's confirm.seeds)"
    )
    confirm.add_argument("--trials", type=int, nargs="+", metavar="N", help="confirm these completed trials instead")
    confirm.add_argument("--quiet", "-q", action="store_true", help="print only the final summary")
    confirm.add_argument(
        "--workers",
        type=_workers,
        default="1",
        metavar="N|auto",
        help="worker processes on this machine; default %(default)s",
    )
    status = study_verb("status", "show a table of the study's trials")
    status.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    export = study_verb("export", "write the best trial's training arguments and a manifest")
    export.add_argument(
        "--format", choices=("yaml", "json"), help="file format (default: --out's, json for a .json, else yaml)"
    )
    export.add_argument(
        "--out",
        type=Path,
        help="output file (default: STUDY folder/NAME.best/best.FORMAT); the manifest and a JSON go beside it",
    )
    export.add_argument(
        "--trial", type=int, help="export this completed trial instead of the best one (needed with objective.cost)"
    )
    sim = study_verb("simulate", "replay the study's stored curves under the pruner of the file and --set")
    sim.add_argument(
        "--top-k", type=int, default=3, help="how many of the best trials must survive (default %(default)s)"
    )
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
    _launch(verbs, study_verb)
    add_storage_server(verbs)
    verbs.add_parser("schema", help="print the study file's JSON Schema (for an editor's YAML language server)")
    return parser


def _launch(verbs, study_verb) -> None:
    """`hpsearch launch slurm STUDY ...`: workers submitted to a cluster's scheduler."""
    launch = verbs.add_parser("launch", help="submit workers of the study to a cluster scheduler (slurm)")
    targets = launch.add_subparsers(dest="target", required=True, metavar="SCHEDULER")
    slurm = study_verb("slurm", "submit N workers as one Slurm job array (hpsearch worker per task)", targets)
    slurm.add_argument("--workers", type=int, required=True, metavar="N", help="array tasks, one worker each")
    slurm.add_argument(
        "--gpus-per-worker",
        type=int,
        metavar="G",
        help="GPUs per task (--gres=gpu:G; default: resources.devices_per_trial when above 1, else none)",
    )
    slurm.add_argument("--partition", metavar="P", help="the Slurm partition (default: the cluster's)")
    slurm.add_argument("--time", metavar="T", help="each task's time limit, e.g. 12:00:00 or 1-00:00:00")
    slurm.add_argument(
        "--sbatch-arg",
        dest="sbatch_args",
        action="append",
        default=[],
        metavar="ARG",
        help="one more #SBATCH directive, e.g. --sbatch-arg=--cpus-per-task=8 (repeatable)",
    )
    slurm.add_argument("--dry-run", action="store_true", help="print the sbatch script; submit nothing")


def add_storage_server(verbs) -> None:
    help_text = (
        "serve a study database to many workers through Optuna's gRPC proxy (they use --storage grpc://HOST:PORT)"
    )
    server = verbs.add_parser("storage-server", help=help_text, description=help_text)
    server.add_argument(
        "--storage",
        required="HPSEARCH_STORAGE" not in os.environ,  # else read by results.storage.given_storage
        help="SQLAlchemy URL of the database to serve, e.g. postgresql://USER@HOST/DB (default: $HPSEARCH_STORAGE)",
    )
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback; 0.0.0.0: all)")
    server.add_argument("--port", type=_port, default=13000, help="port, 0-65535 (default 13000; 0 picks a free one)")
    server.add_argument("--threads", type=int, default=10, help="requests served at once (default 10, as Optuna)")


def _workers(text: str) -> str:
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (a whole number >= 1, or auto)")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return int(text)
