"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data folder, a free port.

`postgres_server()` runs `initdb` and `pg_ctl` from the newest `/usr/lib/postgresql/*/bin` (Debian's
`postgresql` package), as the `postgres` user when we are root (the server refuses to run as root),
listening on 127.0.0.1 only with password (SCRAM) authentication, and removes everything on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from typing import NamedTuple

USER = "hpsearch"
PASSWORD = "s3cret-pw"
DATABASE = "hpsearch"
INSTALL_HINT = "apt-get install postgresql (Debian's server binaries under /usr/lib/postgresql/*/bin)"


class Server(NamedTuple):
    url: str  # postgresql://hpsearch:s3cret-pw@127.0.0.1:PORT/hpsearch
    password: str
    port: int
    user: str = USER
    host: str = "127.0.0.1"

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"


def bindir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl, or None."""
    found = [Path(d) for d in glob("/usr/lib/postgresql/*/bin") if (Path(d) / "initdb").exists()]
    found = [d for d in found if (d / "pg_ctl").exists()]
    if not found:
        return None

    def version(d: Path) -> tuple:
        return tuple(int(p) if p.isdigit() else 0 for p in d.parent.name.split("."))

    return max(found, key=version)


def available() -> bool:
    return bindir() is not None


def _as_server_user(cmd: list[str]) -> list[str]:
    """Root runs the server binaries as `postgres`; anyone else runs them directly."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(cmd)]


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        _as_server_user(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no server log: {e})"


def create_database(server: Server, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: Server, name: str) -> None:
    """Drop it even while connections (a test's pooled engine) are still open."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    """Start a fresh server with an empty `hpsearch` database; stop it and delete its files on exit."""
    bin_ = bindir()
    if bin_ is None:
        raise RuntimeError(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    # Not under pytest's tmp_path: that is mode 700 below /tmp/pytest-of-root, out of postgres' reach.
    base = Path(tempfile.mkdtemp(prefix="hpsearch-pg-", dir="/tmp"))
    data = base / "data"
    log = base / "server.log"
    started = False
    try:
        pwfile = base / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (base, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        init = _run(
            [
                str(bin_ / "initdb"),
                "-D",
                str(data),
                f"--username={USER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=base,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")

        for _attempt in range(3):  # another process may take the port between our probe and the bind
            port = _free_port()
            options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off"
            start = _run([str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"], base)
            if start.returncode == 0:
                started = True
                break
            if "already in use" not in _tail(log):
                break
        if not started:
            raise RuntimeError(
                f"PostgreSQL did not start ({start.returncode}):\n{start.stdout}\n{start.stderr}\n"
                f"--- server log ({log}) ---\n{_tail(log)}"
            )

        server = Server(url=f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}", password=PASSWORD, port=port)
        create_database(server, DATABASE)
        yield server
    finally:
        if started:
            stop = _run([str(bin_ / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"], base, timeout=60)
            if stop.returncode != 0:
                _run([str(bin_ / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop"], base, timeout=60)
        for _ in range(3):  # the server's last files may vanish under rmtree while it exits
            shutil.rmtree(base, ignore_errors=True)
            if not base.exists():
                break
            time.sleep(0.2)
