"""Where a study lives: the default SQLite file beside the study file, any SQLAlchemy URL otherwise."""

from __future__ import annotations

from pathlib import Path

import optuna
from sqlalchemy.engine import make_url

from hpsearch.spec import Spec, SpecError


class NotFound(LookupError):
    """A study, trial or storage the user named does not exist (exit status 2)."""


def storage_url(spec: Spec, override: str | None = None) -> str:
    """`--storage`, else the study file's `storage`, else `sqlite:///<study folder>/NAME.db`."""
    url = override or spec.storage
    if url is None:
        return f"sqlite:///{Path(spec.source).resolve().parent / spec.name}.db"
    try:
        make_url(url)
    except Exception:
        raise SpecError(
            spec.source, "storage", f"{redact(url)!r} is not a SQLAlchemy URL (e.g. sqlite:///x.db)"
        ) from None
    return url


def redact(url: str) -> str:
    """The URL as it may be printed: never with a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable storage URL>"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_storage(url: str, *, create: bool) -> optuna.storages.RDBStorage:
    """Open the storage; with create=False a missing SQLite file is an error, not a new empty file."""
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise NotFound(f"no study database at {path} (run the study first)")
    engine_kwargs = {}
    if path is not None:
        # Wait for a lock instead of failing at once when another reader or writer holds it.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def load_study(spec: Spec, url: str) -> optuna.Study:
    storage = open_storage(url, create=False)
    names = optuna.study.get_all_study_names(storage)
    if spec.name not in names:
        found = ", ".join(names) or "none"
        raise NotFound(f"no study named {spec.name!r} in {redact(url)} (studies there: {found})")
    return optuna.load_study(study_name=spec.name, storage=storage)
