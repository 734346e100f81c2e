"""Scratch folders in the system's temporary directory (a trial's Trainer output, a multi-device trial's
ranks, `hpsearch train`'s), named with the host and process that made them: the process removes its own when
it ends, and a worker starting on the same host removes those of processes that died (killed, out of memory),
which could not. A checkpoint of a large model in one is gigabytes."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

HOST = socket.gethostname()
# hpsearch-<what>-pid<pid>@<host>-<mkdtemp's 8 characters>: a host name has no `@`, a folder name no `/`.
_OWNER = re.compile(r"^hpsearch-.*-pid(\d+)@([^@/]+)-[a-z0-9_]{8}$")


def alive(pid: int) -> bool:
    """Whether process `pid` of this host exists and has not exited (a zombie has). A pid that another
    process took since counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): the pid exists
        return True


def folder(what: str) -> Path:
    """A new scratch folder for `what` (`quickstart-trial3`), owned by this process on this host."""
    return Path(tempfile.mkdtemp(prefix=f"hpsearch-{what}-pid{os.getpid()}@{HOST}-"))


def remove_orphans() -> tuple[int, float]:
    """Remove the scratch folders that processes of this host left when they died; how many, and their MB.
    Another host's (a temporary directory shared over the network) and a live process's are kept."""
    removed, size = 0, 0
    for entry in Path(tempfile.gettempdir()).glob("hpsearch-*-pid*@*-*"):
        owner = _OWNER.match(entry.name)
        if owner is None or owner[2] != HOST or alive(int(owner[1])) or not entry.is_dir() or entry.is_symlink():
            continue
        bytes_ = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink())
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed, size = removed + 1, size + bytes_
    return removed, size / 2**20
