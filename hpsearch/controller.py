"""Check a study before anything is written, create or resume it, and drive the sweep."""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna

from hpsearch import __version__, data, models, pruners, samplers, space, worker
from hpsearch.progress import Progress
from hpsearch.spec import Spec, SpecError
from hpsearch.storage import open_storage, redact, storage_url
from hpsearch.tasks import TASKS
from hpsearch.trial import training_arguments


@dataclass(frozen=True)
class Checked:
    """What validation learned and a run reuses."""

    storage_url: str
    model_path: str
    raw: data.RawData
    labels: tuple[str, ...]
    total_trials: int | None


def _example_params(spec: Spec) -> list[tuple[str, dict]]:
    """A base point of the space, then each categorical choice on top of it."""
    base = {n: (p.choices[0] if p.kind == "categorical" else p.low) for n, p in spec.search.items()}
    points = [("train", base)]
    for name, p in spec.search.items():
        for choice in p.choices[1:]:
            points.append((f"search.{name}", {**base, name: choice}))
    return points


def _check_training_arguments(spec: Spec) -> None:
    from transformers import TrainingArguments

    for field, params in _example_params(spec):
        try:
            TrainingArguments(output_dir="unused", **training_arguments(spec, params))
        except (ValueError, TypeError, ImportError) as exc:
            raise SpecError(
                spec.source, field, f"TrainingArguments rejects it: {str(exc).splitlines()[0][:300]}"
            ) from None


def check(spec: Spec, storage_override: str | None = None) -> Checked:
    """Every check a run needs before it writes anything; raises SpecError."""
    samplers.build_sampler(spec)
    pruners.build_pruner(spec)
    url = storage_url(spec, storage_override)
    _check_training_arguments(spec)
    model_path = models.resolve_model(spec.model.name_or_path, spec.source)
    raw = data.load_raw(spec.data, spec.source)
    labels = TASKS[spec.task].label_names(raw, spec)
    return Checked(url, model_path, raw, labels, worker.total_trials(spec))


def describe(spec: Spec, checked: Checked) -> str:
    trials = "until the timeout" if checked.total_trials is None else f"{checked.total_trials} trials"
    return (
        f"{spec.source}: OK: study {spec.name!r}, {spec.task}, {len(spec.search)} searched params "
        f"({', '.join(spec.search)}), {spec.sampler.type} sampler, {spec.pruner.type} pruner, {trials}\n"
        f"  data: {len(checked.raw.train)} train / {len(checked.raw.eval)} eval rows, "
        f"{len(checked.labels)} labels, fingerprint {checked.raw.fingerprint}\n"
        f"  model: {checked.model_path}\n  storage: {redact(checked.storage_url)}"
    )


def _check_compatible(spec: Spec, study: optuna.Study) -> None:
    """A resumed study must search each parameter with the same kind of distribution as before."""
    stored = {}
    for t in study.get_trials(deepcopy=False):
        stored.update(t.distributions)
    for name, param in spec.search.items():
        if name not in stored:
            continue
        try:
            optuna.distributions.check_distribution_compatibility(stored[name], space.distribution(param))
        except ValueError:
            raise SpecError(
                spec.source,
                f"search.{name}",
                f"the stored study {spec.name!r} searched it as {stored[name]}; change it back or use a new study name",
            ) from None


def run(spec: Spec, storage_override: str | None = None, quiet: bool = False) -> int:
    """Run or resume the sweep; returns the exit status (KeyboardInterrupt propagates)."""
    checked = check(spec, storage_override)
    worker.quiet_libraries()
    progress = Progress(spec.objective.metric, quiet=quiet)
    ctx = worker.prepare(spec, progress, checked.model_path, checked.raw)
    study = worker.open_study(spec, open_storage(checked.storage_url, create=True))
    if study.direction.name.lower() != spec.objective.direction:
        raise SpecError(
            spec.source,
            "objective.direction",
            f"the stored study {spec.name!r} was created to {study.direction.name.lower()}; use a new name",
        )
    _check_compatible(spec, study)
    study.set_user_attr("spec", spec.to_dict())
    study.set_user_attr("hpsearch_version", __version__)
    requeued = worker.requeue_interrupted(study)
    done = sum(worker.counted(t) for t in study.get_trials(deepcopy=False))
    total = "?" if checked.total_trials is None else checked.total_trials
    progress.say(
        f"study {spec.name}: {done}/{total} trials done in {redact(checked.storage_url)}"
        + (f"; re-running {requeued} interrupted" if requeued else "")
    )
    started = time.time()
    try:
        worker.work(spec, study, ctx, timeout=spec.budget.timeout)
    finally:
        progress.summary(study, started)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    if optuna.trial.TrialState.COMPLETE not in states and optuna.trial.TrialState.FAIL in states:
        return 1
    return 0
