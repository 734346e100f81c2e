"""What hpsearch tells a user went wrong, and the exit status each kind of failure ends with: one place
for every layer (the bottom of the import graph, below the spec)."""

from __future__ import annotations

import errno
import os
import tempfile
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


def shown(value, width: int = 60) -> str:
    """A value the input held, as a message quotes it: its repr, cut to `width` characters."""
    return cut(repr(value), width)


def cut(text: str, width: int = 60) -> str:
    """Text a message shows of the input (a value as it is written), cut to `width` characters."""
    return text if len(text) <= width else text[: width - 3] + "..."


class NotFound(LookupError):
    """A study, trial or storage the user named does not exist (exit status 2)."""

    exit_status = EXIT_INVALID


class NoDatabase(NotFound):
    """No SQLite study database at `path` (a reading verb's storage, or another study's for warm start)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no study database at {path} (run the study first)")
        self.path = path


def redact(url: str) -> str:
    """A storage URL as it may be printed: never with a password (one SQLAlchemy cannot parse is shown as
    given, with whatever stands between `user:` and the last `@` masked)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        head, at, host = url.rpartition("@")
        if not at:
            return url
        scheme, sep, credentials = head.rpartition("://")
        user, colon, _ = credentials.partition(":")
        return f"{scheme}{sep}{user}{colon}{'***' if colon else ''}@{host}"


def cannot_write(path: str | Path, *, folder: bool = False, parents: bool = True) -> str | None:
    """Why `path` cannot be written (a file; with folder=True a folder to fill), or None when it can.

    Missing folders on the way count as creatable (with parents=False, a missing folder is the reason)
    when the nearest existing one takes new files; that is tried with an unnamed temporary file, so
    nothing stays behind. Checked before anything is written, so a bad output path fails with a message
    instead of after a partial write (or after training)."""
    path = Path(path).expanduser().absolute()
    if path.is_dir() and not folder:
        return f"{path} is a folder, not a file"
    if path.exists() and folder and not path.is_dir():
        return f"{path} is a file, not a folder"
    existing = path if folder else path.parent
    while not existing.is_dir():
        if existing.exists():
            return f"{existing} is a file, not a folder"
        if not parents:
            return f"folder {existing} does not exist"
        existing = existing.parent
    if path.is_file() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        why = "" if exc.errno == errno.ENOENT else f" ({exc.strerror})"
        return f"no file can be created in folder {existing}{why}"
    return None


def missing_study(name: str, url: str, names: Iterable[str] | None = None) -> NotFound:
    """No study `name` in the storage at `url` (printed without its password), listing the studies it has."""
    listed = "" if names is None else f" (studies there: {', '.join(sorted(names)) or 'none'})"
    return NotFound(f"no study named {name!r} in {redact(url)}{listed}")
