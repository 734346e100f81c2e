"""Scratch folders carry their host and process, and a starting worker removes only those of dead processes
of its own host."""

import os
import subprocess
import sys
import tempfile

import pytest

from hpsearch.training import scratch


@pytest.fixture
def tmpdir_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped: its pid names no process (until the kernel hands it out again)
    return proc.pid


def test_only_the_folders_of_dead_processes_of_this_host_are_removed(tmpdir_of_its_own):
    mine = scratch.folder("b77-trial3")
    assert mine.parent == tmpdir_of_its_own and mine.name.startswith(f"hpsearch-b77-trial3-pid{os.getpid()}@")
    dead = _dead_pid()
    orphan = tmpdir_of_its_own / f"hpsearch-b77-trial4-ranks-pid{dead}@{scratch.HOST}-abcd_123"
    (orphan / "best-checkpoint").mkdir(parents=True)
    (orphan / "best-checkpoint" / "model.safetensors").write_bytes(b"\0" * 3 * 2**20)
    elsewhere = tmpdir_of_its_own / f"hpsearch-b77-trial5-pid{dead}@another-node-abcd_123"
    unlike = [tmpdir_of_its_own / f"hpsearch-b77-trial6-pid{dead}@{scratch.HOST}-x", tmpdir_of_its_own / "hpsearch-x"]
    for kept in (elsewhere, *unlike):
        kept.mkdir()
    (tmpdir_of_its_own / f"hpsearch-b77-trial7-pid{dead}@{scratch.HOST}-abcd_123").write_text("a file, not ours")

    assert scratch.remove_orphans() == (1, 3.0)
    assert not orphan.exists() and mine.is_dir() and elsewhere.is_dir() and all(p.exists() for p in unlike)
    assert scratch.remove_orphans() == (0, 0.0)
