"""Best trial -> its training arguments (loadable as TrainingArguments(**d)) plus a manifest."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import optuna
import yaml

from hpsearch.errors import NotFound, cannot_write, redact, shown
from hpsearch.results import versions
from hpsearch.results.confirmation import Confirmation
from hpsearch.results.format import format_value
from hpsearch.results.pareto import pareto_front
from hpsearch.results.record import StudyAttr, TrialAttr
from hpsearch.spec import SpecError
from hpsearch.spec.load import Dumper, document_format


def objective_names(study: optuna.Study, given: dict | None = None) -> list[str]:
    """The names of the study's objectives as it was run (its stored spec), whatever a study file or --set says
    now: the metric as the study file names it (`accuracy`, as the progress lines show it), then the cost, if
    any; `given` (the objective section's values) for a study that stored none."""
    objective = (study.user_attrs.get(StudyAttr.SPEC) or {}).get("objective") or given or {}
    names = [objective.get("metric", "?"), objective.get("cost") or "cost"]
    return names[: len(study.directions)]


def describe_values(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """`accuracy=0.9`, or `accuracy=0.9, device_seconds=12.3` with a cost objective."""
    pairs = zip(objective_names(study), trial.values or (), strict=False)
    return ", ".join(f"{name}={format_value(v)}" for name, v in pairs)


def pick_trial(
    study: optuna.Study, number: int | None, confirmed: Confirmation | None = None
) -> optuna.trial.FrozenTrial:
    """Trial `number` if it is COMPLETE, else the confirmed winner (`hpsearch confirm`) when the search's
    winner was among the configs confirmed, else the best trial. A study with a cost objective has no one
    best, so it needs a number: the error lists its Pareto front to choose from."""
    if number is None and confirmed is not None and confirmed.winner is not None and confirmed.covers_search_winner:
        number = confirmed.winner.trial
    if number is None and len(study.directions) > 1:
        front = pareto_front(study)
        if not front:
            raise NotFound(f"study {study.study_name!r} has no completed trial to export")
        lines = "\n".join(f"  trial {t.number}: {describe_values(study, t)}" for t in front)
        raise SpecError(
            "hpsearch export",
            "--trial",
            f"study {study.study_name!r} weighs quality against cost, so it has no one best trial; "
            f"pick one of its {len(front)} Pareto-optimal trials (best quality first) with --trial N:\n{lines}",
        )
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


def check_run_by_hpsearch(trial: optuna.trial.FrozenTrial) -> None:
    """NotFound unless hpsearch ran the trial (it recorded the training arguments it trained with): a trial
    of a study made by plain Optuna has nothing to export, retrain or confirm."""
    if TrialAttr.TRAINING_ARGUMENTS not in trial.user_attrs:
        raise NotFound(f"trial {trial.number} has no training_arguments: it was not run by hpsearch")


def build(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, url: str, confirmed: Confirmation | None = None
) -> tuple[dict, dict]:
    """(training arguments, manifest). The manifest holds what `hpsearch train` needs besides the
    arguments: task, model, the whole data section, labels, the trial's steps and metric, and the
    config's confirmation over seeds when it has one."""
    spec = study.user_attrs.get(StudyAttr.SPEC, {})
    check_run_by_hpsearch(trial)
    arguments = dict(trial.user_attrs[TrialAttr.TRAINING_ARGUMENTS])
    ranks = trial.user_attrs.get(TrialAttr.RANKS, 1)
    if ranks > 1:  # the trial's effective batch on one device: each of its ranks took a micro-batch per step
        arguments["gradient_accumulation_steps"] = arguments.get("gradient_accumulation_steps", 1) * ranks
    manifest: dict[str, Any] = {
        "study": study.study_name,
        "storage": redact(url),
        "trial": trial.number,
        "metric": f"eval_{spec.get('objective', {}).get('metric', '?')}",
        "value": trial.values[0],
        "direction": study.directions[0].name.lower(),
        **_cost(study, trial),
        "params": dict(trial.params),
        "finetune": trial.user_attrs.get(TrialAttr.FINETUNE, "full"),
        "augmentation": trial.user_attrs.get(TrialAttr.AUGMENTATION),
        "seed": trial.user_attrs.get(TrialAttr.SEED),
        "steps_trained": trial.user_attrs.get(TrialAttr.STEPS_TRAINED),
        **_stop_at(trial),
        "task": spec.get("task"),
        "model": chosen_model(spec, trial),
        "data": {**spec.get("data", {}), "fingerprint": trial.user_attrs.get(TrialAttr.DATA_FINGERPRINT)},
        "spec": spec,
        "labels": study.user_attrs.get(StudyAttr.LABELS),
        "trained_on": trial.user_attrs.get(TrialAttr.DEVICE),
        **({"ranks": ranks} if ranks > 1 else {}),
        **_versions(trial),
        "confirmation": _confirmation(confirmed, trial),
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return arguments, manifest


def _confirmation(confirmed: Confirmation | None, trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """The trial's config over seeds (its values, mean, std, 95 % interval) and whether it is the
    confirmed winner; None when it was not confirmed."""
    mine = None if confirmed is None else confirmed.of(trial.number)
    if mine is None:
        return None
    return {
        **mine.to_dict(),
        "winner": confirmed.winner.trial == trial.number,
        "search_winner": confirmed.search_winner,
    }


def _versions(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The versions the trial ran with, recorded in its own process. A trial run before hpsearch recorded
    them has the exporting process's instead, and the manifest says so (`versions_from: export`)."""
    recorded = trial.user_attrs.get(TrialAttr.VERSIONS)
    if recorded:
        return {"versions": recorded, "versions_from": "trial"}
    return {"versions": versions.current(), "versions_from": "export"}


def _cost(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The manifest's cost entries, for a study with a cost objective (a second value)."""
    if len(study.directions) < 2:
        return {}
    on_front = trial.number in {t.number for t in pareto_front(study)}
    return {"cost": objective_names(study)[1], "cost_value": trial.values[1], "pareto_optimal": on_front}


def _stop_at(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """With objective.at: best, where the trial's value was evaluated (`hpsearch train` stops there)."""
    if TrialAttr.BEST_AT_STEP not in trial.user_attrs:
        return {}
    attrs = trial.user_attrs
    return {"stop_at_step": attrs[TrialAttr.BEST_AT_STEP], "stop_at_samples": attrs.get(TrialAttr.BEST_AT_SAMPLES)}


def chosen_model(spec: dict, trial: optuna.trial.FrozenTrial) -> str | None:
    """The model the trial trained (a folder or hub id): its search.model choice, or the fixed one."""
    model = spec.get("model") or {}
    if "model" in trial.params:
        return (model.get("choices") or {}).get(trial.params["model"], trial.user_attrs.get(TrialAttr.MODEL))
    return model.get("name_or_path")


def dump(data: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.dump(data, Dumper=Dumper, sort_keys=False)  # text that reads as a number is quoted


def manifest_path(out: Path) -> Path:
    """BEST.yaml -> BEST.manifest.yaml (the format follows the arguments file)."""
    return out.with_name(f"{out.stem}.manifest{out.suffix}")


def targets(out: Path) -> list[Path]:
    """The files an export to `out` writes: the arguments, the manifest beside them, and BEST.json."""
    return [out, manifest_path(out), *([out.with_suffix(".json")] if document_format(out) != "json" else [])]


def file_format(out: Path | None, given: str | None) -> str:
    """The format an export writes: --format's, else the one `hpsearch train` reads --out in by its suffix (a .json
    as JSON, any other as YAML), else YAML. A --format train would not read --out in is refused: YAML written
    into best.json failed `hpsearch train best.json`, the command export prints, as malformed JSON."""
    if out is None:
        return given or "yaml"
    read_as = document_format(out)
    if given is not None and given != read_as:
        raise SpecError(
            "hpsearch export",
            "--format",
            f"{given} into {shown(out.name)}, which hpsearch train reads as {read_as.upper()} by its suffix; "
            f"give --out a {'.json' if given == 'json' else '.yaml'} file, or leave --format out",
        )
    return read_as


# The suffixes a manifest may have: BEST.manifest.yaml (or .yml, as --out names it) or BEST.manifest.json.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def earlier_files(out: Path) -> list[Path]:
    """The files an earlier export to `out`'s name left under another suffix: its manifest (BEST.manifest.yaml
    when this export writes BEST.manifest.json or BEST.manifest.yml, and the reverse) and the arguments file that
    manifest is for (BEST.yaml), so that the folder holds one export, not a stale one `hpsearch train` would read
    (.yml and .yaml are one format, but two files). Only files
    export wrote: a manifest by its name and its content (a mapping with export's `train_command`), an
    arguments file by its name and that command; never a user's own file, nor one this export writes."""
    ours = targets(out)
    found = []
    for suffix in MANIFEST_SUFFIXES:
        manifest, arguments = out.with_name(f"{out.stem}.manifest{suffix}"), out.with_name(f"{out.stem}{suffix}")
        command = _train_command(manifest)
        if manifest in ours or command is None:
            continue
        found.append(manifest)
        if arguments not in ours and arguments.is_file() and Path(command).name == arguments.name:
            found.append(arguments)
    return found


def _train_command(manifest: Path) -> str | None:
    """The file a manifest export wrote retrains (its `train_command`); None for any other file."""
    if not manifest.is_file():
        return None
    try:
        loaded = yaml.safe_load(manifest.read_text())  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    command = loaded.get("train_command") if isinstance(loaded, dict) else None
    if not isinstance(command, str) or not command.startswith("hpsearch train "):
        return None
    return command.removeprefix("hpsearch train ")


def write(arguments: dict, manifest: dict, out: Path, fmt: str) -> tuple[list[Path], list[Path]]:
    """Write the arguments (BEST.yaml or .json), the manifest beside them, and always a
    TrainingArguments JSON (BEST.json), and remove an earlier export's files under another suffix
    (`earlier_files`); returns (the paths written, those removed). Every file is checked first: one
    that cannot be written is SpecError (exit 2) with nothing written or removed, not a partial export."""
    out = out.resolve()
    for target in targets(out):
        problem = cannot_write(target)
        if problem is not None:
            beside = "" if target == out else f" (written beside it: {target.name})"
            raise SpecError("hpsearch export", "--out", f"{out}{beside}: {problem}; give a file in a writable folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = {**manifest, "train_command": f"hpsearch train {out}"}
    written = targets(out)
    out.write_text(dump(arguments, fmt))
    written[1].write_text(dump(manifest, fmt))
    if len(written) > 2:
        written[2].write_text(dump(arguments, "json"))
    removed = earlier_files(out)
    for path in removed:
        path.unlink(missing_ok=True)
    return written, removed
