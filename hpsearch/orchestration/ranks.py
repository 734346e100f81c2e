"""A trial on `resources.devices_per_trial` processes: the worker keeps the Optuna trial (ask, heartbeat,
tell), launches its ranks with torchrun (`rank.py`) and turns what they left into the trial's outcome: its
value, a prune, or a failure with its reason (a rank that died, or the error one of them raised).

Each rank leaves `rankR.json` in the trial's folder when it ends on its own (trained, pruned, failed, or
stopped by torchrun's agent); a rank that left none died without a word (killed, or crashed).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna

from hpsearch.results.record import TrialAttr
from hpsearch.search import space
from hpsearch.spec import Spec
from hpsearch.training import scratch
from hpsearch.training.trial import WORKER, WORKER_ENV
from hpsearch.training.trial_record import INTERRUPTED, queue_rerun

SPEC_FILE = "spec.pickle"  # the worker's resolved Spec, --set overrides and all: the ranks train the same
LOG_FILE = "ranks.log"  # torchrun's and the ranks' stderr; its tail is a failed trial's traceback
STOP_GRACE_S = 30  # how long the ranks get to stop when the worker is interrupted


def rank_file(folder: Path, rank: int) -> Path:
    return folder / f"rank{rank}.json"


class RanksFailed(RuntimeError):
    """The trial's ranks did not finish: the reason is the trial's error."""


def launch_command(folder: Path, trial_id: int, ranks: int, quiet: bool) -> list[str]:
    """torchrun with one rank per device on this machine (`--standalone`: its own rendezvous on a free port)."""
    return [
        sys.executable,
        *("-m", "hpsearch.orchestration.rank", "launch", "--standalone", f"--nproc-per-node={ranks}"),
        *("--max-restarts=0", "-m", "hpsearch.orchestration.rank", str(folder), str(trial_id), str(int(quiet))),
    ]


def run_on_ranks(trial: optuna.Trial, spec: Spec, storage_url: str, quiet: bool) -> float | tuple[float, float]:
    """The objective of a multi-device trial: its params drawn here (where the sampler lives; rank 0 reads
    them back from the storage), its ranks run to their end, their outcome returned or raised."""
    ranks = spec.resources.devices_per_trial
    space.suggest(trial, spec.search)
    trial.set_user_attr(TrialAttr.RANKS, ranks)
    folder = scratch.folder(f"{spec.name}-trial{trial.number}-ranks")
    (folder / SPEC_FILE).write_bytes(pickle.dumps(spec))
    # The storage goes by environment, not on the command line where `ps` would show a password.
    env = {**os.environ, "HPSEARCH_STORAGE": storage_url, "HPSEARCH_PARENT_PID": str(os.getpid()), WORKER_ENV: WORKER}
    started = time.perf_counter()
    try:
        with open(folder / LOG_FILE, "w") as log:
            proc = subprocess.Popen(
                launch_command(folder, trial._trial_id, ranks, quiet),
                stderr=log,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the worker, which stops the ranks itself
            )
            try:
                status = proc.wait()
            except KeyboardInterrupt:
                _stop(proc)
                _interrupted(trial, ranks * (time.perf_counter() - started))
                raise
        device_seconds = round(ranks * (time.perf_counter() - started), 3)  # every device, the ranks' start too
        trial.set_user_attr(TrialAttr.DEVICE_SECONDS, device_seconds)
        values = _outcome(trial, folder, ranks, status)
        if spec.objective.cost == TrialAttr.DEVICE_SECONDS:  # the cost is what the trial records
            values[1] = device_seconds
        return values[0] if len(values) == 1 else tuple(values)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _outcome(trial: optuna.Trial, folder: Path, ranks: int, status: int) -> list[float]:
    left = [_read(rank_file(folder, r)) for r in range(ranks)]
    trial.set_user_attr(TrialAttr.RANK_STEPS, [None if end is None else end.get("steps") for end in left])
    died = [r for r, end in enumerate(left) if end is None]
    failed = [(r, end["error"]) for r, end in enumerate(left) if end is not None and end["state"] == "fail"]
    lead = left[0] or {}
    if died:
        which = ", ".join(map(str, died))
        reason = (
            f"rank{'s' if len(died) > 1 else ''} {which} of {ranks} died without finishing (killed or crashed;"
            f" torchrun exit status {status}); the other ranks were stopped"
        )
    elif failed and failed[0][0] == 0:  # rank 0's own error, as it recorded it (with its traceback) if it trained
        trial.set_user_attr(TrialAttr.ERROR, failed[0][1])
        raise RanksFailed(failed[0][1])
    elif failed:
        reason = f"rank {failed[0][0]} of {ranks}: {failed[0][1]}"
    elif lead.get("state") not in ("complete", "pruned"):
        reason = f"the ranks were stopped before the end (torchrun exit status {status})"
    elif len({(end["state"], *end.get("values", [])[:1]) for end in left}) > 1:
        # Every rank scores gathered predictions: a disagreement is a bug, not a result to keep.
        ends = ", ".join(f"rank {r} {end['state']} {end.get('values', [''])[0]}".rstrip() for r, end in enumerate(left))
        reason = f"the ranks disagree on the outcome: {ends}"
    else:
        reason = None
    if reason is not None:
        trial.set_user_attr(TrialAttr.ERROR, reason)
        trial.set_user_attr(TrialAttr.TRACEBACK, _tail(folder / LOG_FILE))
        raise RanksFailed(reason)
    if lead["state"] == "pruned":
        raise optuna.TrialPruned(lead["reason"])
    return lead["values"]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM torchrun (its agent stops the ranks); kill the whole group if it does not stop in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _interrupted(trial: optuna.Trial, device_seconds: float) -> None:
    """As `run_trial` records a trial cut short by Ctrl-C or SIGTERM: not counted, its re-run queued once."""
    trial.set_user_attr(TrialAttr.DEVICE_SECONDS, round(device_seconds, 3))  # budget.device_hours counts it
    for key, value in INTERRUPTED.items():
        trial.set_user_attr(key, value)
    queue_rerun(trial.study, trial)
