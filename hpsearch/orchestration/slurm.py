"""`hpsearch launch slurm STUDY --workers N`: N workers of a study as one Slurm job array.

    hpsearch launch slurm studies/banking77.yaml --workers 8 --gpus-per-worker 1 --time 12:00:00 --dry-run

Builds a plain sbatch script (`script`: what --dry-run prints) whose array tasks each run `hpsearch worker
STUDY`, and submits it with `sbatch --parsable` (`submit`). The storage URL reaches the tasks through the
environment sbatch passes on ($HPSEARCH_STORAGE), never through the script, which is printed and stored.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from hpsearch.errors import EXIT_FAILURE, SpecError, redact

WHERE = "hpsearch launch slurm"
# Slurm's --time formats: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS[:MINUTES[:SECONDS]].
TIME_FORMAT = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE", re.IGNORECASE)
TIME_FORMATS = "MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS[:MINUTES[:SECONDS]] or UNLIMITED"


class SubmitFailed(RuntimeError):
    """sbatch ran and refused the job (or failed): its own message, exit status 1."""

    exit_status = EXIT_FAILURE


@dataclass(frozen=True)
class Launch:
    """One job array: what `script` writes. Paths are absolute: the tasks start in `workdir`."""

    study: Path
    name: str
    workers: int
    storage_url: str  # passed by environment, never written into the script
    overrides: tuple[str, ...] = ()
    gpus_per_worker: int | None = None  # None: the study's resources.devices_per_trial where it is above 1
    devices_per_trial: int = 1  # the study's resources.devices_per_trial: the GPUs each worker's trial trains on
    partition: str | None = None
    time: str | None = None
    sbatch_args: tuple[str, ...] = ()
    workdir: Path = Path()
    python: str = sys.executable

    @property
    def gpus(self) -> int:
        """GPUs each task asks for (`--gres=gpu:G`): as given, or a multi-device trial's devices."""
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        return self.devices_per_trial if self.devices_per_trial > 1 else 0

    @property
    def output(self) -> Path:
        """Each task's log: Slurm fills in %A (the array's job id) and %a (the task's index)."""
        return self.workdir / f"hpsearch-{self.name}-%A_%a.out"


def check(launch: Launch) -> None:
    """Refuse, before anything is submitted, what would give N jobs that cannot work."""
    if launch.workers < 1:
        raise SpecError(WHERE, "--workers", f"{launch.workers} is not a number of workers (a whole number >= 1)")
    if launch.gpus < 0:
        raise SpecError(WHERE, "--gpus-per-worker", f"{launch.gpus} is not a number of GPUs (0 or more)")
    n = launch.devices_per_trial
    if launch.gpus not in (0, n):  # 0: the trials train on CPUs; a worker runs one trial at a time
        why = "too few for one trial" if launch.gpus < n else f"{launch.gpus - n} would sit idle"
        raise SpecError(
            WHERE,
            "--gpus-per-worker",
            f"{launch.gpus} GPUs for a worker whose trials train on resources.devices_per_trial = {n} ({why}):"
            f" give {n}, or leave the flag out",
        )
    if launch.time is not None and not TIME_FORMAT.fullmatch(launch.time):
        raise SpecError(WHERE, "--time", f"{launch.time!r} is not a Slurm time limit ({TIME_FORMATS})")
    if _backend(launch.storage_url) == "sqlite":
        raise SpecError(
            WHERE,
            "storage",
            f"{redact(launch.storage_url)} is a SQLite file, which the cluster's nodes cannot share safely; give a"
            " PostgreSQL URL (--storage, $HPSEARCH_STORAGE or the study file's storage)",
        )


def _backend(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except Exception:  # not SQLAlchemy's (grpc://...): not a SQLite file either
        return url.partition(":")[0]


def _sbatch_value(path: Path) -> str:
    """A path as an #SBATCH directive's value: sbatch splits those lines at whitespace and ends them at `#`
    unless quoted, and reads a backslash-escaped quote inside quotes as the quote itself."""
    text = str(path)
    if not re.search(r"""[\s#"'\\]""", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(launch: Launch) -> str:
    """The sbatch script: one array task per worker, each `exec`ing `hpsearch worker STUDY` (so Slurm's
    SIGTERM at scancel or the time limit reaches the worker, which records its trial as interrupted)."""
    directives = [
        f"--job-name=hpsearch-{launch.name}",
        f"--array=0-{launch.workers - 1}",
        "--ntasks=1",
        *([f"--gres=gpu:{launch.gpus}"] if launch.gpus else []),
        *([f"--partition={launch.partition}"] if launch.partition else []),
        *([f"--time={launch.time}"] if launch.time else []),
        f"--chdir={_sbatch_value(launch.workdir)}",
        f"--output={_sbatch_value(launch.output)}",
        "--export=ALL",  # the submitting environment, $HPSEARCH_STORAGE with it
        *launch.sbatch_args,  # last: a user's directive overrides ours
    ]
    command = [
        launch.python,
        "-m",
        "hpsearch.cli",
        "worker",
        str(launch.study),
        *(f"--set={o}" for o in launch.overrides),
    ]
    gpus = f"{launch.gpus} GPU(s) each, " if launch.gpus else ""
    lines = [
        "#!/bin/bash",
        f"# Written by `hpsearch launch slurm`: {launch.workers} worker(s) of study {launch.name}, {gpus}one per array",
        "# task. They share the study through its storage, which sbatch passes on as $HPSEARCH_STORAGE",
        f"# ({redact(launch.storage_url)}); the URL is never written here. Each trial records its task",
        "# (JOBID_INDEX, `hpsearch status` shows it); scancel stops the workers (their trials interrupted and",
        "# queued again) and the same launch command resumes the study.",
        *(f"#SBATCH {d}" for d in directives),
        "set -eu",
        'if [ -z "${HPSEARCH_STORAGE:-}" ]; then',
        '  echo "error: HPSEARCH_STORAGE is not set: submit with hpsearch launch slurm (or export it)" >&2',
        "  exit 2",
        "fi",
        "export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false",
        "# Slurm sets CUDA_VISIBLE_DEVICES to the task's GPUs; without GPUs torch takes the task's CPUs.",
        'if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then',
        '  export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK" MKL_NUM_THREADS="$SLURM_CPUS_PER_TASK"',
        "fi",
        "exec " + shlex.join(command),
    ]
    return "\n".join(lines) + "\n"


def submit(launch: Launch, text: str) -> str:
    """Submit the script with `sbatch --parsable`, the storage URL in its environment; return the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SpecError(
            WHERE, "", "sbatch is not on PATH: run it on a Slurm login node (--dry-run prints the script only)"
        )
    env = {**os.environ, "HPSEARCH_STORAGE": launch.storage_url}
    try:
        done = subprocess.run([sbatch, "--parsable"], input=text, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise SubmitFailed("sbatch did not answer within 120 s: nothing was submitted") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise SubmitFailed(f"sbatch refused the job: {said}")
    return done.stdout.strip().splitlines()[-1].split(";")[0]


def describe(launch: Launch, job: str, study_arg: str, storage_flag: bool = False) -> str:
    """What was submitted and how to watch and stop it (`storage_flag`: `status` needs the same --storage)."""
    status = f"hpsearch status {shlex.quote(study_arg)}" + (" --storage URL" if storage_flag else "")
    return "\n".join(
        [
            f"submitted Slurm job {job}: {launch.workers} worker(s) of study {launch.name}"
            f" (array 0-{launch.workers - 1}) on {redact(launch.storage_url)}",
            f"watch it:  {status}   squeue -j {job}",
            f"logs:      {str(launch.output).replace('%A', job).replace('%a', '*')}",
            f"stop it:   scancel {job}   (trials running are recorded as interrupted; the same command resumes)",
        ]
    )
