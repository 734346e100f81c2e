"""A storage URL checked before anything is written: SQLAlchemy must parse it and its database driver
must be installed (the message names the pip package that provides it); or grpc://HOST:PORT, the address
of an `hpsearch storage-server` (Optuna's gRPC storage proxy), whose client needs grpcio."""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit

from hpsearch.errors import redact

GRPC_SCHEME = "grpc://"

# SQLAlchemy's driver names -> the pip package that provides each (the name to install).
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
    "mysqlconnector": "mysql-connector-python",
    "oracledb": "oracledb",
    "cx_oracle": "cx-oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


def url_problem(url: str) -> str | None:
    """What is wrong with a storage URL (with its password hidden), or None when it can be used."""
    from sqlalchemy.engine import make_url

    if url.startswith(GRPC_SCHEME):
        return grpc_problem(url)

    try:
        parsed = make_url(url)
    except Exception:
        return f"{redact(url)!r} is not a SQLAlchemy URL (e.g. sqlite:///x.db)"
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except Exception:
        return f"{shown!r}: SQLAlchemy knows no database {parsed.drivername!r}"
    try:
        dialect.import_dbapi()
    except ImportError:
        package = DRIVER_PACKAGES.get(dialect.driver, dialect.driver)
        return (
            f"{shown!r} needs the database driver {dialect.driver!r}, which is not installed: pip install {package!r}"
        )
    return None


def grpc_address(url: str) -> tuple[str, int] | None:
    """(host, port) of a grpc://HOST:PORT URL (an IPv6 host in brackets, as gRPC takes it); None for any other URL."""
    if not url.startswith(GRPC_SCHEME):
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    return (f"[{host}]" if ":" in host else host), parts.port


def grpc_problem(url: str) -> str | None:
    """grpc://HOST:PORT and nothing else (the proxy serves every study of its one database), with grpcio installed."""
    form = "grpc://HOST:PORT, the address an `hpsearch storage-server` prints"
    parts = urlsplit(url)
    shown = url if "@" not in parts.netloc else url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2])
    try:
        port = parts.port
    except ValueError:
        return f"{shown!r} is not {form} (the port must be 1-65535)"
    if not parts.hostname or not port:
        return f"{shown!r} needs a host and a port: {form}"
    if "@" in parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
        return f"{shown!r} takes no user, database or options: {form}"
    if not grpc_installed():
        return f"{shown!r} needs {GRPC_MISSING}"
    return None


GRPC_MISSING = "grpcio and protobuf, which are not installed: pip install 'hpsearch[grpc]'"


def grpc_installed() -> bool:
    """Whether what Optuna's gRPC proxy (client and server) imports is installed, without importing it."""
    try:
        return importlib.util.find_spec("grpc") is not None and importlib.util.find_spec("google.protobuf") is not None
    except ModuleNotFoundError:  # no google namespace package at all
        return False
