"""A storage URL checked before anything is written: SQLAlchemy must parse it and its database driver
must be installed (the message names the pip package that provides it)."""

from __future__ import annotations

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

    try:
        parsed = make_url(url)
    except Exception:
        return "'<unparseable storage URL>' is not a SQLAlchemy URL (e.g. sqlite:///x.db)"
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
