"""A throwaway single-node Slurm cluster for the tests: Debian's `slurm-wlm` and `munge`, all in a temp folder.

`slurm_cluster()` writes a munge key and a minimal slurm.conf (this host as the one node, its CPUs, no
cgroups: `proctrack/linuxproc`, `task/none`, no accounting), starts munged, slurmctld and slurmd in
the foreground as root on free ports, waits until the node is idle, and stops them and removes
everything on exit. Clients find the cluster through `SLURM_CONF` (`Cluster.env`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

INSTALL_HINT = "apt-get install slurm-wlm munge (Debian's slurmctld, slurmd, sbatch and munged)"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


class Cluster(NamedTuple):
    conf: Path  # slurm.conf
    node: str
    base: Path  # the temp folder: logs, state, spool

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (sbatch, squeue, scancel, hpsearch launch slurm) needs."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def logs(self) -> str:
        """The daemons' last log lines, for a failure message."""
        return "\n".join(f"--- {name} ---\n{_tail(self.base / name)}" for name in ("slurmctld.log", "slurmd.log"))


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in DAEMONS)


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def _config(base: Path, node: str) -> str:
    cpus = os.cpu_count() or 1
    return f"""\
ClusterName=hpsearch-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge.socket
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MessageTimeout=20
KillWait=30
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={max(1, _memory_mb() - 512)} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _node_state(env: dict[str, str], node: str) -> str:
    out = subprocess.run(
        ["sinfo", "--noheader", "-n", node, "-o", "%T"], env=env, capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip()


@contextlib.contextmanager
def slurm_cluster(timeout: float = 60) -> Iterator[Cluster]:
    """Start munged, slurmctld and slurmd; yield once the node is idle; stop them and delete the files."""
    base = Path(tempfile.mkdtemp(prefix="hpsearch-slurm-", dir="/tmp"))
    node = socket.gethostname().split(".")[0]
    procs: list[subprocess.Popen] = []
    cluster = None
    try:
        for sub in ("state", "spool", "munge"):
            (base / sub).mkdir()
        key = base / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        conf = base / "slurm.conf"
        conf.write_text(_config(base, node))
        cluster = Cluster(conf=conf, node=node, base=base)
        env = cluster.env

        def start(args: list[str], log: str) -> None:
            with open(base / log, "ab") as out:
                procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base))

        start(
            [
                _binary("munged"),
                "--foreground",
                "--force",  # the temp folder's parents (/tmp) are world-writable, which munged refuses otherwise
                f"--socket={base}/munge.socket",
                f"--key-file={key}",
                f"--pid-file={base}/munge/munged.pid",
                f"--seed-file={base}/munge/munged.seed",
                f"--log-file={base}/munge/munged.log",
            ],
            "munged.out",
        )
        _wait(lambda: (base / "munge.socket").exists(), timeout, "munged", base / "munge" / "munged.log", procs)
        start([_binary("slurmctld"), "-D", "-i", "-f", str(conf)], "slurmctld.out")
        start([_binary("slurmd"), "-D", "-f", str(conf), "-N", node], "slurmd.out")
        _wait(lambda: _node_state(env, node) == "idle", timeout, "the node", None, procs, cluster)
        yield cluster
    finally:
        if cluster is not None and all(proc.poll() is None for proc in procs):
            _drain(cluster)
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _drain(cluster: Cluster, timeout: float = 60) -> None:
    """Cancel what a failed test left queued and wait for it to end: a job step outlives slurmd (its
    slurmstepd is a daemon of its own), and would be left behind once the daemons stop."""
    env = cluster.env
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=30)
        if out.returncode != 0 or not out.stdout.strip():
            return
        time.sleep(1)


def _wait(ready, timeout: float, what: str, log: Path | None, procs, cluster: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        dead = [p.args[0] for p in procs if p.poll() is not None]
        if dead:
            break
        time.sleep(0.5)
    detail = cluster.logs() if cluster else _tail(log) if log else ""
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s (exited: {dead or 'none'}):\n{detail}")
