"""`hpsearch run --workers N|auto`: start `hpsearch worker` processes on this machine, one per GPU
(pinned with CUDA_VISIBLE_DEVICES) or one per CPU slot, relay their progress, restart one that dies.

The workers share nothing but the storage: each pulls trials until the study's budget is met
(`worker.work`), so a crash in one costs at most its running trial, which heartbeats give back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import optuna

from hpsearch.orchestration.progress import EVENTS_ENV, Progress
from hpsearch.spec import SpecError

# On a machine without a GPU, `auto` starts one worker per this many cores (each worker's torch gets
# cores // workers threads). Splitting 2 cores into 2 one-thread workers gained only 1.05x (BENCHMARKS.md,
# "Workers"): torch already uses a few cores well, and every worker holds its own model and data.
CORES_PER_CPU_WORKER = 4
# A worker that dies (killed, crashed, a CUDA error) is started again this many times per slot.
MAX_RESTARTS = 3
# How long stopped workers get to record their running trial before they are killed.
STOP_GRACE_S = 60


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[: torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def count(workers: str, devices_per_trial: int = 1) -> int:
    """`--workers`: a positive number, or `auto` (one per visible GPU, else one per 4 CPU cores); with
    resources.devices_per_trial N > 1, `auto` is one per N GPUs, and more workers than the GPUs hold is refused."""
    gpus = len(visible_gpus())
    if workers != "auto":
        n = int(workers)
    else:  # the CPU's ranks share its cores like workers do
        n = gpus // devices_per_trial or max(1, cores() // (CORES_PER_CPU_WORKER * devices_per_trial))
    if gpus and devices_per_trial > 1 and n * devices_per_trial > gpus:  # one device per trial: workers may share
        raise SpecError(
            "hpsearch",
            "--workers" if n > 1 else "resources.devices_per_trial",
            f"{n} worker{'s' if n > 1 else ''} x {devices_per_trial} devices per trial need {n * devices_per_trial}"
            f" GPUs; this machine shows {gpus}: use fewer workers or fewer resources.devices_per_trial",
        )
    return n


def _env(
    slot: int, n: int, gpus: list[str], storage_url: str, events: bool = False, devices_per_trial: int = 1
) -> dict[str, str]:
    env = {
        **os.environ,
        "HPSEARCH_STORAGE": storage_url,  # not on the command line, where `ps` would show a password
        "HPSEARCH_PARENT_PID": str(os.getpid()),
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop(EVENTS_ENV, None)
    if events:  # this process draws the live view: the worker sends its progress as events for it
        env[EVENTS_ENV] = "events"
    if gpus:  # the slot's own devices_per_trial GPUs (count() made sure that every slot has its own)
        per = devices_per_trial
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[(slot * per + i) % len(gpus)] for i in range(per))
    else:  # share the cores instead of every worker's (or rank's) torch taking all of them
        threads = str(max(1, cores() // (n * devices_per_trial)))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return env


def _describe(status: int) -> str:
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.label = f"w{index}"
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.reader: threading.Thread | None = None


def run(
    n: int,
    argv: list[str],
    storage_url: str,
    progress: Progress,
    budget,
    study: optuna.Study,
    timeout: float | None = None,
    devices_per_trial: int = 1,
) -> None:
    """Run `n` worker processes until each has stopped; raise KeyboardInterrupt after stopping them
    when this process is interrupted."""
    gpus = visible_gpus()
    lock = threading.Lock()
    started = time.monotonic()

    def relay(slot: _Slot, stream) -> None:
        for line in stream:
            with lock:
                progress.relay(slot.label, line.rstrip())

    def start(slot: _Slot) -> None:
        args = [sys.executable, "-m", "hpsearch.cli", "worker", *argv, "--child"]
        if timeout is not None:  # a restarted worker gets what is left of the run's timeout
            args += ["--set", f"budget.timeout={max(1.0, timeout - (time.monotonic() - started)):.0f}"]
        env = _env(
            slot.index, n, gpus, storage_url, events=progress.view is not None, devices_per_trial=devices_per_trial
        )
        slot.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches this process only; it stops the workers itself
        )
        slot.reader = threading.Thread(target=relay, args=(slot, slot.proc.stdout), daemon=True)
        slot.reader.start()
        where = f"GPU {env['CUDA_VISIBLE_DEVICES']}" if gpus else f"CPU threads: {env['OMP_NUM_THREADS']}"
        with lock:
            progress.say(f"{slot.label} started: pid {slot.proc.pid}, {where}")

    slots = [_Slot(i) for i in range(n)]
    try:
        for slot in slots:
            start(slot)
        running = list(slots)
        while running:
            time.sleep(0.5)
            for slot in list(running):
                status = slot.proc.poll()
                if status is None:
                    continue
                slot.reader.join(timeout=5)
                running.remove(slot)
                with lock:
                    progress.stopped(slot.label)
                if status == 0:
                    continue
                if status == 2:  # the worker refused the study; its message was relayed
                    raise RuntimeError(f"worker {slot.label} refused the study ({_describe(status)})")
                again = slot.restarts < MAX_RESTARTS and budget.next_step(study) != "stop"
                with lock:
                    progress.say(
                        f"{slot.label} {_describe(status)}"
                        + (f"; starting it again ({slot.restarts + 1} of {MAX_RESTARTS})" if again else ""),
                        always=True,
                    )
                if again:
                    slot.restarts += 1
                    start(slot)
                    running.append(slot)
    except BaseException:
        _stop(slots)
        raise


def _stop(slots: list[_Slot]) -> None:
    """SIGTERM every live worker (each records its running trial as interrupted and queues its re-run),
    wait for them, and kill those that do not stop in time."""
    live = [s for s in slots if s.proc is not None and s.proc.poll() is None]
    for slot in live:
        slot.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for slot in live:
        try:
            slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            slot.proc.wait()
        if slot.reader is not None:
            slot.reader.join(timeout=5)


def die_with_parent() -> None:
    """In a worker started by `run`: get SIGTERM when the starting process dies (Linux), and stop now
    if it is already gone, so a killed `hpsearch run` never leaves workers behind."""
    parent = os.environ.get("HPSEARCH_PARENT_PID")
    if parent is None:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):
        raise KeyboardInterrupt
