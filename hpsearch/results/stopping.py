"""SIGTERM stops a server (`hpsearch dashboard`, `hpsearch storage-server`) as Ctrl-C does. Imports nothing
heavy, so the CLI installs it before a server's start-up (the study file, torch, optuna: seconds) as well."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """While the block runs, SIGTERM (`kill`, a scheduler) raises KeyboardInterrupt, as Ctrl-C does."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
