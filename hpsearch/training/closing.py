"""A finished trial's closing writes, whole: a signal that comes while its record and Optuna's tell of it
are written waits until they are done, then stops the run.

The sweep's signal handler (`orchestration/controller._interrupt_once`) interrupts training at once; from
`hold()` (the trial's record write begins) to `release()` (the worker's `study.optimize` has told the
trial) it only notes the signal, and `release` says whether one came. An interrupt there would leave a
trained trial failed, or running until its heartbeat went stale, and its result lost."""

from __future__ import annotations

_held = False
_deferred = False


def hold() -> None:
    """The trial's closing writes begin: a signal from now on waits for `release`."""
    global _held
    _held = True


def defer() -> bool:
    """The signal handler's question: True (and the signal noted) while the closing writes run."""
    global _deferred
    if _held:
        _deferred = True
    return _held


def release() -> bool:
    """The closing writes are done; True when a signal came during them (the caller stops the run)."""
    global _held, _deferred
    came, _held, _deferred = _deferred, False, False
    return came
