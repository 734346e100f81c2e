"""What hpsearch tells a user went wrong, and the exit status each kind of failure ends with: one place
for every layer (the bottom of the import graph, below the spec)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1  # a runtime failure (a bug, a lost database): the message names it
EXIT_INVALID = 2  # invalid input (a study file, a flag, a name): nothing was written
EXIT_DEVICE = 3  # the GPU failed past recovery in its process; `run --workers` restarts the worker
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; the same command resumes


class SpecError(Exception):
    """Invalid study input: the CLI prints it in one or two lines and exits with status 2."""

    exit_status = EXIT_INVALID

    def __init__(self, source: str | Path, field_path: str, message: str) -> None:
        self.source = str(source)
        self.field = field_path
        self.message = message
        where = f"{self.source}: {field_path}" if field_path else self.source
        super().__init__(f"{where}: {message}")


class NotFound(LookupError):
    """A study, trial or storage the user named does not exist (exit status 2)."""

    exit_status = EXIT_INVALID


def redact(url: str) -> str:
    """A storage URL as it may be printed: never with a password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable storage URL>"


def missing_study(name: str, url: str, names: Iterable[str] | None = None) -> NotFound:
    """No study `name` in the storage at `url` (printed without its password), listing the studies it has."""
    listed = "" if names is None else f" (studies there: {', '.join(sorted(names)) or 'none'})"
    return NotFound(f"no study named {name!r} in {redact(url)}{listed}")
