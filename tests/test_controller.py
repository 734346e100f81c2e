"""The sweep's stop on SIGINT/SIGTERM (`controller._interrupt_once`): one signal, one interrupt, never lost."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hpsearch.orchestration import controller


class DiesWithASignal:
    """An object whose finalizer is running when the signal comes: Python drops an exception raised there."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside __del__
        for _ in range(1000):
            pass


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_sigterm_interrupts_once_and_a_second_one_is_ignored():
    with pytest.raises(KeyboardInterrupt), controller._interrupt_once():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            spin(2)
        finally:  # recording the trial: a second signal must not cut it short
            os.kill(os.getpid(), signal.SIGTERM)
            spin(0.2)
        pytest.fail("not interrupted")


def test_a_sigterm_that_came_during_a_finalizer_still_interrupts(capsys):
    """Seen under Slurm: scancel's one SIGTERM landed in a weakref callback, the interrupt was printed as
    "Exception ignored" and the worker trained on until Slurm killed it."""
    with pytest.raises(KeyboardInterrupt), controller._interrupt_once():
        DiesWithASignal()  # finalized at once
        spin(5)
        pytest.fail("the interrupt was lost")
    assert "Exception ignored" not in capsys.readouterr().err
