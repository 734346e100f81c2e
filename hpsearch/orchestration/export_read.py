"""An export as `hpsearch train` reads it: the training arguments and the manifest beside them, every key
train reads checked before anything is trained, so that a hand-edited export is refused naming its key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpsearch.errors import shown
from hpsearch.orchestration import corners
from hpsearch.results import export
from hpsearch.spec import Spec, SpecError, parse_spec
from hpsearch.spec.load import read_document
from hpsearch.spec.messages import raise_all
from hpsearch.spec.search import check_arguments

# What the user does about a manifest that export wrote valid and an edit broke: export writes it valid again.
AGAIN = ": export again"

# What `hpsearch train` reads from a manifest, with its type; checked before any training.
MANIFEST_FIELDS = {
    "spec": dict,
    "study": str,
    "trial": int,
    "metric": str,
    "value": (int, float),
    "labels": list,
    "data": dict,
    "steps_trained": int,
}


def _read_mapping(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise SpecError(file, "", "no such file (write it with: hpsearch export STUDY)")
    expected = "an export is the UTF-8 YAML or JSON hpsearch export writes"
    loaded = read_document(file, expected, "to be an export (write it with: hpsearch export STUDY)")
    if not isinstance(loaded, dict):
        raise SpecError(file, "", "must be a mapping (write it with: hpsearch export STUDY)")
    return loaded


def load_export(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training arguments, manifest) of an export; SpecError when either is missing or malformed."""
    arguments = _read_mapping(path)
    check_arguments(arguments, path)  # a hand-edited one is refused naming its key, not by TrainingArguments
    corners.build_or_refuse(arguments, path, [("", arguments)], "")
    manifest_file = export.manifest_path(path)
    manifest = _read_mapping(manifest_file)
    for key, kind in MANIFEST_FIELDS.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise SpecError(manifest_file, key, f"missing or not {expected}: export again")
    stop, trained = manifest.get("stop_at_step"), manifest["steps_trained"]  # objective.at: best's step
    if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or not 0 < stop <= trained):
        raise SpecError(
            manifest_file, "stop_at_step", f"{shown(stop)} is not a step of the trial (1 to {trained}): export again"
        )
    if not isinstance(manifest.get("params") or {}, dict):
        raise SpecError(
            manifest_file, "params", f"{shown(manifest['params'])} is not a mapping of param: value: export again"
        )
    _check_confirmation(manifest.get("confirmation"), manifest_file)
    _check_versions({} if manifest.get("versions") is None else manifest["versions"], manifest_file)
    _check_copies(manifest, manifest_file)
    return arguments, manifest


def _check_confirmation(confirmed: Any, manifest_file: Path) -> None:
    """`confirmation` as `hpsearch confirm` writes it (null, or low, high and n), checked before training:
    it is read only once the model is trained."""
    if confirmed is None or (isinstance(confirmed, dict) and confirmed.get("low") is None):
        return
    numbers = isinstance(confirmed, dict) and all(
        isinstance(confirmed.get(k), (int, float)) and not isinstance(confirmed.get(k), bool)
        for k in ("low", "high", "n")
    )
    if not numbers:
        raise SpecError(
            manifest_file,
            "confirmation",
            f"{shown(confirmed)} is not allowed; null, or numbers low, high and n: export again",
        )


def _check_versions(recorded: Any, manifest_file: Path) -> None:
    """`versions` as export writes it, package name -> version text (null: not installed, in an older export),
    checked before training: it is compared only once the model is trained."""
    if not isinstance(recorded, dict):
        raise SpecError(manifest_file, "versions", f"{shown(recorded)} is not allowed; a mapping of package to version")
    for name, version in recorded.items():
        if not isinstance(name, str) or not (version is None or isinstance(version, str)):
            raise SpecError(
                manifest_file,
                f"versions.{name}",
                f"{shown(version)} is not allowed; a version as text (quoted in YAML: '2.10' is not 2.1): export again",
            )


def _check_copies(manifest: dict[str, Any], manifest_file: Path) -> None:
    """The manifest's `task`, `data` and (a model not searched) `model` copy its `spec`, from which train
    rebuilds the data and the model: a copy edited alone (a new `data.path`) would be ignored, so it is refused."""
    spec = manifest["spec"]
    copies = {("data", k): (f"data.{k}", v) for k, v in manifest["data"].items() if k != "fingerprint"}
    if "task" in manifest:
        copies[("", "task")] = ("task", manifest["task"])
    if "model" not in (manifest.get("params") or {}) and manifest.get("model") is not None:
        copies[("model", "name_or_path")] = ("model", manifest["model"])
    for (section, name), (key, copy) in copies.items():
        holder = spec.get(section) if section else spec
        if isinstance(holder, dict) and name in holder and holder[name] != copy:  # else the spec's rules refuse it
            home = f"spec.{section}.{name}" if section else f"spec.{name}"
            given, read = shown(copy, 200), shown(holder[name], 200)  # a path quoted whole, as far as it goes
            raise SpecError(
                manifest_file, key, f"{given} differs from {home} ({read}), which train reads: make the two agree"
            )


def at_spec_key(error: SpecError, manifest_file: Path, hint: str = "") -> SpecError:
    """An error of the manifest's stored spec at its key in the manifest (`spec.data.path`, not the study file's
    `data.path`), `hint` after it; an error of another file (a data file's own) as it is."""
    if error.source != str(manifest_file):
        return error
    return SpecError(manifest_file, f"spec.{error.field}" if error.field else "spec", error.message + hint)


@contextlib.contextmanager
def stored_spec_keys(manifest_file: Path) -> Iterator[None]:
    """The errors raised within, of the stored spec, at their keys in the manifest (`at_spec_key`), with no hint:
    they are of the data or the model as they are now, which exporting again would not change."""
    try:
        yield
    except SpecError as exc:
        raise_all([at_spec_key(e, manifest_file) for e in getattr(exc, "errors", [exc])])
        raise


def parse_stored(stored: dict[str, Any], metric: str, manifest_file: Path) -> Spec:
    """The stored spec parsed again, its errors naming the manifest, with the manifest's `metric` as its
    objective: the rule `validate` applies to a study's objective.metric refuses one the task's evaluation
    does not report, now, not in a KeyError once the model is trained. The manifest's `metric` is a copy of
    the study's objective, the metric its `value` is of: another one the task reports is refused too, or
    train would compare, say, an F1 with the trial's accuracy. The stored spec passed these rules when export
    wrote it, so one that fails them was edited since: its errors end with `export again`."""
    objective = stored.get("objective") or {}
    if isinstance(objective, dict):
        stored = {**stored, "objective": {**objective, "metric": metric}}
    try:
        spec = parse_spec(stored, manifest_file)
    except SpecError as exc:
        placed = []  # the manifest's own `metric`, or a key of its `spec`
        for e in getattr(exc, "errors", [exc]):
            metric_error = e.field == "objective.metric"
            placed.append(
                SpecError(e.source, "metric", e.message) if metric_error else at_spec_key(e, manifest_file, AGAIN)
            )
        raise_all(placed)
        raise
    study_metric = objective.get("metric") if isinstance(objective, dict) else None
    if isinstance(study_metric, str) and spec.objective.metric != study_metric:
        raise SpecError(
            manifest_file,
            "metric",
            f"{shown(metric)} differs from spec.objective.metric ({shown(study_metric)}), the metric of the "
            f"trial's value: make the two agree",
        )
    return spec
