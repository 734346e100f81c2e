"""`hpsearch train BEST.yaml`: retrain an exported config and save a model `from_pretrained` loads.

Trained like the trial (same data, arguments and seed), the retrained metric is compared with the
trial's and the comparison saved beside the model; `--all-data` trains on train + eval instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hpsearch.data import augment
from hpsearch.errors import cannot_write, shown
from hpsearch.orchestration import preflight
from hpsearch.orchestration.export_read import AGAIN, load_export, parse_stored, stored_spec_keys
from hpsearch.results import export, versions
from hpsearch.spec import SpecError
from hpsearch.spec.schema import SAMPLES_AXIS_SINCE, stored_version
from hpsearch.spec.search import SCHEDULED_BY_HPSEARCH
from hpsearch.tasks import TASKS
from hpsearch.training import models
from hpsearch.training.callbacks import StopAtStep
from hpsearch.training.scratch import folder as scratch_folder
from hpsearch.training.trainer import DEFAULT_TRAINING_ARGUMENTS, make_trainer

RESULT_FILE = "hpsearch_train.json"


def _stored_spec(manifest: dict[str, Any], params: dict[str, Any], source: Path) -> dict[str, Any]:
    """The study's stored spec, ready to parse again. A searched model becomes the one the trial
    chose (its resolved folder or hub id, recorded in the manifest): only that model is loaded, and
    `params` name it so. The stored choices' paths were resolved against the study file's folder."""
    stored = {k: v for k, v in manifest["spec"].items() if k != "source"}
    if isinstance(stored.get("search"), dict) and "finetune" in stored["search"]:
        stored.pop("finetune", None)  # the stored spec writes the default method beside the searched one
    if "model" in params and isinstance(stored.get("search"), dict) and isinstance(stored.get("model"), dict):
        if not isinstance(manifest.get("model"), str):
            raise SpecError(source, "model", "missing: the trial's model choice is unknown; export again")
        stored["model"] = {k: v for k, v in stored["model"].items() if k != "choices"}
        stored["search"] = {**stored["search"], "model": [manifest["model"]]}
        params["model"] = manifest["model"]
    return stored


def _evaluation_on_samples(stored: dict[str, Any], arguments: dict[str, Any], path: Path) -> dict[str, Any]:
    """An export of a study stored before schema version 3, when Trainer scheduled evaluations by step:
    its `train.eval_steps` becomes `evaluation.every` (a fraction as it was; steps times the trial's
    effective batch), and the arguments (of the export at `path`) lose the step schedule hpsearch now sets itself."""
    if not isinstance(stored.get("schema_version", 1), int) or stored_version(stored) >= SAMPLES_AXIS_SINCE:
        return arguments  # a schema_version that is not a number is refused by parse_spec, next
    if not all(isinstance(stored.get(k) or {}, dict) for k in ("train", "evaluation")):
        return arguments  # refused by parse_spec, next, at its key
    train = dict(stored.get("train") or {})
    stored_here = "eval_steps" in train
    every = train.pop("eval_steps", arguments.get("eval_steps", 0.1))
    if not isinstance(every, (int, float)) or isinstance(every, bool) or not every > 0:
        # else compared with 1 (a TypeError), or refused as evaluation.every, a key the manifest does not hold
        where = (export.manifest_path(path), "spec.train.eval_steps") if stored_here else (path, "eval_steps")
        why = "is not allowed; a number of steps, or a fraction of training, > 0"
        raise SpecError(*where, f"{shown(every)} {why}" + (AGAIN if stored_here else ""))
    for key in SCHEDULED_BY_HPSEARCH:
        train.pop(key, None)
    if every > 1:  # steps
        every *= arguments.get("per_device_train_batch_size", 8) * arguments.get("gradient_accumulation_steps", 1)
    stored.update(train=train, evaluation={**(stored.get("evaluation") or {}), "every": every})
    dropped = {*SCHEDULED_BY_HPSEARCH, *({"logging_strategy", "logging_steps"} - set(train))}
    return {k: v for k, v in arguments.items() if k not in dropped}


def retrain(
    path: Path, out: Path | None, all_data: bool = False, tolerance: float = 0.01, merge: bool = False
) -> dict[str, Any]:
    """Retrain, save model + tokenizer + the comparison in `out`, and return the comparison.

    A LoRA trial saves its adapter (load it with peft's `AutoPeftModel*.from_pretrained`); with
    `merge`, the adapter merged into the base model's weights instead (a plain transformers model)."""
    from datasets import concatenate_datasets
    from transformers import TrainingArguments

    path = path.resolve()
    arguments, manifest = load_export(path)
    out = (out or path.parent / "model").resolve()
    problem = cannot_write(out, folder=True)  # checked now, not by save_model after the training
    if problem is not None:
        raise SpecError("hpsearch train", "--out", f"{out}: {problem}; give a folder that can be created or written")
    manifest_file = export.manifest_path(path)
    params = dict(manifest.get("params") or {})
    # The manifest's `versions` (the trial's, or the export's for a trial that recorded none): a warning, not an
    # error; nothing to compare in an older manifest.
    versions_differ = versions.differing(manifest.get("versions") or {})
    stored = _stored_spec(manifest, params, manifest_file)
    arguments = _evaluation_on_samples(stored, arguments, path)
    spec = parse_stored(stored, manifest["metric"], manifest_file)
    # The data and the model as they are now, at the stored spec's keys; no `export again`: it writes the same spec.
    with stored_spec_keys(manifest_file):
        prepared = preflight.check(spec, write=False)
        model = prepared.model_for(spec, params)
    dropout = models.dropout_overrides(model.dropout_attributes, spec.model.dropout_for(params))
    if list(prepared.labels) != manifest["labels"]:
        raise SpecError(
            manifest_file,
            "labels",
            f"the data now gives labels {list(prepared.labels)}, the trial had {manifest['labels']}",
        )
    task = TASKS[spec.task]
    lora_settings = spec.finetune.settings(params)
    seed = arguments.get("seed", DEFAULT_TRAINING_ARGUMENTS["seed"])
    with stored_spec_keys(manifest_file):
        task_data = task.prepare(spec, prepared.raw, model.tokenizer)
        # The trial's augmented train split: the same probability (searched or fixed) and seed, the same rows.
        augmented, augmentation = augment.for_trial(
            spec, task, prepared.raw, model.tokenizer, task_data.labels, params, seed
        )
    train_split = task_data.train if augmented is None else augmented
    scratch = str(scratch_folder(f"train-{spec.name}"))
    try:
        if all_data:
            train_set = concatenate_datasets([train_split, task_data.eval])  # eval rows as they are
            # The trial's number of optimizer steps, now over more data; nothing is held out to score.
            fixed = {**arguments, "max_steps": manifest["steps_trained"], "eval_strategy": "no"}
            callbacks = [StopAtStep(manifest["stop_at_step"])] if manifest.get("stop_at_step") else []
        else:
            train_set, fixed = augmented, arguments
            # No evaluation moves training's random state (training.random_state), so the trial's path is
            # followed step for step without its intermediate evaluations; a trial that stopped early
            # (early_stopping) ends where it did, and one scored at its best evaluation (objective.at: best)
            # at that evaluation's step, on the same schedule (the same learning rate at every step).
            stop = manifest.get("stop_at_step") or manifest.get("steps_trained")
            callbacks = [StopAtStep(stop)] if stop else []
        args = TrainingArguments(output_dir=scratch, **fixed)
        trainer = make_trainer(
            task,
            task_data,
            model.tokenizer,
            model.path,
            args,
            callbacks,
            train_dataset=train_set,
            lora_settings=lora_settings,
            dropout=dropout,
            length_split=spec.data.length_split,
        )
        trainer.train()
        try:
            metrics = None if all_data else trainer.evaluate(eval_dataset=task_data.evaluated)
        finally:  # the trained model is kept, whatever its evaluation does
            if lora_settings is not None and merge:
                trainer.model.merge_and_unload().save_pretrained(str(out))
            else:
                trainer.save_model(str(out))  # a LoRA trial: the adapter only
            model.tokenizer.save_pretrained(str(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    value = None if metrics is None else _reported(metrics, spec.objective.key, manifest_file, out)
    trial_value = manifest["value"]
    result = {
        "export": str(path),
        "study": manifest["study"],
        "trial": manifest["trial"],
        "metric": spec.objective.key,
        "trial_value": trial_value,
        "retrained_value": value,
        "difference": None if value is None else value - trial_value,
        "tolerance": tolerance,
        "matches": None if value is None else abs(value - trial_value) <= tolerance,
        **_against_confirmation(manifest.get("confirmation"), value),
        "all_data": all_data,
        "saved": "full model" if lora_settings is None else ("merged model" if merge else "LoRA adapter"),
        "steps": trainer.state.global_step,
        "augmentation": augmentation,
        "data_fingerprint": prepared.raw.fingerprint,
        "data_changed": prepared.raw.fingerprint != manifest["data"].get("fingerprint"),
        "model": str(out),
        "base_model": model.path,
        "dropout": dropout or None,
        "versions_differ": versions_differ,
        "versions_from": manifest.get("versions_from", "export"),
    }
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _reported(metrics: dict[str, float], key: str, manifest_file: Path, out: Path) -> float:
    """The metric's retrained value. The manifest's metric is one the task reports (parse_stored); one that
    its evaluation still did not report is known only now, with the model saved: the error says where."""
    if key not in metrics:
        reported = ", ".join(sorted(metrics))
        raise SpecError(
            manifest_file,
            "metric",
            f"evaluation reported no {key!r} (it reported {reported}); the model is saved in {out}",
        )
    return metrics[key]


def _against_confirmation(confirmed: dict[str, Any] | None, value: float | None) -> dict[str, Any]:
    """The confirmation's 95 % interval (`hpsearch confirm`) and whether the retrained value falls in it."""
    if not confirmed or confirmed.get("low") is None:
        return {}
    low, high = confirmed["low"], confirmed["high"]
    return {
        "confirmation_interval": [low, high],
        "confirmation_seeds": confirmed["n"],
        "within_confirmation": None if value is None else low <= value <= high,
    }


def describe(result: dict[str, Any]) -> str:
    lines = [f"saved {result['saved']} and tokenizer to {result['model']} ({result['steps']} steps)"]
    if result["all_data"]:
        lines.append("trained on train + eval: nothing held out, so no comparison with the trial")
    else:
        verdict = "matches" if result["matches"] else "does NOT match"
        metric = result["metric"].removeprefix("eval_")  # as status and export name it (the manifest keeps the key)
        lines.append(
            f"{metric}: retrained {result['retrained_value']:.4f}, trial {result['trial']} "
            f"{result['trial_value']:.4f} (difference {result['difference']:+.4f}): {verdict} "
            f"within {result['tolerance']}"
        )
    interval = result.get("confirmation_interval")
    if interval is not None and result["retrained_value"] is not None:
        where = "inside" if result["within_confirmation"] else "OUTSIDE"
        lines.append(
            f"confirmation over {result['confirmation_seeds']} seeds: 95 % interval [{interval[0]:.4f}, "
            f"{interval[1]:.4f}]; the retrained value is {where} it"
            + ("" if result["within_confirmation"] else ": this run is not typical of the config")
        )
    if result["data_changed"]:
        lines.append("warning: the data's fingerprint differs from the trial's; the data changed since")
    if result.get("versions_differ"):
        whose = "trial's" if result["versions_from"] == "trial" else "export's (the trial recorded none)"
        differ = versions.describe_differing(result["versions_differ"])
        lines.append(f"warning: package versions differ from the {whose}, so results may too: {differ}")
    return "\n".join(lines)
