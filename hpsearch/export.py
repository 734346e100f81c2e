"""Best trial -> its training arguments (loadable as TrainingArguments(**d)) plus a manifest."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import optuna
import yaml

from hpsearch.storage import NotFound, redact

PACKAGES = ("hpsearch", "optuna", "transformers", "torch", "datasets", "accelerate", "sqlalchemy")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    if number is None:
        try:
            return study.best_trial
        except ValueError:
            raise NotFound(f"study {study.study_name!r} has no completed trial to export") from None
    for t in study.get_trials(deepcopy=False):
        if t.number == number:
            if t.state != optuna.trial.TrialState.COMPLETE:
                raise NotFound(f"trial {number} is {t.state.name}, not COMPLETE")
            return t
    raise NotFound(f"study {study.study_name!r} has no trial {number}")


def build(study: optuna.Study, trial: optuna.trial.FrozenTrial, url: str) -> tuple[dict, dict]:
    """(training arguments, manifest). The manifest holds what `hpsearch train` needs besides the
    arguments: task, model, the whole data section, labels, and the trial's steps and metric."""
    spec = study.user_attrs.get("spec", {})
    if "training_arguments" not in trial.user_attrs:
        raise NotFound(f"trial {trial.number} has no training_arguments: it was not run by hpsearch")
    arguments = dict(trial.user_attrs["training_arguments"])
    manifest: dict[str, Any] = {
        "study": study.study_name,
        "storage": redact(url),
        "trial": trial.number,
        "metric": f"eval_{spec.get('objective', {}).get('metric', '?')}",
        "value": trial.value,
        "direction": study.direction.name.lower(),
        "params": dict(trial.params),
        "finetune": trial.user_attrs.get("finetune", "full"),
        "seed": trial.user_attrs.get("seed"),
        "steps_trained": trial.user_attrs.get("steps_trained"),
        "task": spec.get("task"),
        "model": chosen_model(spec, trial),
        "data": {**spec.get("data", {}), "fingerprint": trial.user_attrs.get("data_fingerprint")},
        "spec": spec,
        "labels": study.user_attrs.get("labels"),
        "trained_on": trial.user_attrs.get("device"),
        "versions": {p: _version(p) for p in PACKAGES},
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return arguments, manifest


def chosen_model(spec: dict, trial: optuna.trial.FrozenTrial) -> str | None:
    """The model the trial trained (a folder or hub id): its search.model choice, or the fixed one."""
    model = spec.get("model") or {}
    if "model" in trial.params:
        return (model.get("choices") or {}).get(trial.params["model"], trial.user_attrs.get("model"))
    return model.get("name_or_path")


def dump(data: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def manifest_path(out: Path) -> Path:
    """BEST.yaml -> BEST.manifest.yaml (the format follows the arguments file)."""
    return out.with_name(f"{out.stem}.manifest{out.suffix}")


def write(arguments: dict, manifest: dict, out: Path, fmt: str) -> list[Path]:
    """Write the arguments (BEST.yaml or .json), the manifest beside them, and always a
    TrainingArguments JSON (BEST.json); returns the paths written."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = {**manifest, "train_command": f"hpsearch train {out}"}
    written = [out, manifest_path(out)]
    out.write_text(dump(arguments, fmt))
    written[1].write_text(dump(manifest, fmt))
    if out.suffix != ".json":
        written.append(out.with_suffix(".json"))
        written[2].write_text(dump(arguments, "json"))
    return written
