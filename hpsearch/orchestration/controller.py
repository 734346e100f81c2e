"""Create or resume a study after preflight, refuse incompatible resumes, and drive the sweep."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import optuna

from hpsearch import __version__
from hpsearch.errors import redact
from hpsearch.orchestration import pool, preflight, worker
from hpsearch.orchestration.progress import Progress
from hpsearch.results.record import StudyAttr, TrialAttr
from hpsearch.results.storage import open_storage
from hpsearch.search import space
from hpsearch.spec import Spec, SpecError
from hpsearch.spec.schema import SAMPLES_AXIS_SINCE, SCHEMA_VERSION, resume_defaults, stored_version
from hpsearch.training import closing
from hpsearch.training.trainer import notes
from hpsearch.training.trial import WORKER

# What a study stored before a setting existed ran with: the setting off. A resume that turns it on
# is refused like any other change (other keys newer than the stored spec are not compared).
# A stored key a study lacks ran with its schema default (see hpsearch.spec.schema.resume_defaults).
OFF_BEFORE_IT_EXISTED = resume_defaults()
# Sections that decide what a trial's number means; a resumed study must keep them.
FIXED_SECTIONS = (
    "task",
    "model",
    "data",
    "objective",
    "train",
    "early_stopping",
    "evaluation",
    "finetune",
    "lora",
    "augmentation",
    "generation",
    "resources",  # the ranks a trial trains on multiply its effective batch
)


def check_resume(spec: Spec, study: optuna.Study) -> None:
    """A resumed study keeps its directions, its fixed settings and the kind of each distribution."""
    where = f"the stored study {spec.name!r}"
    stored_directions = [d.name.lower() for d in study.directions]
    if len(stored_directions) != len(spec.objective.directions):
        # Optuna fixes a study's number of objectives when it creates it: a cost cannot come or go.
        kind = "with a cost objective" if len(stored_directions) > 1 else "without objective.cost (one objective)"
        raise SpecError(spec.source, "objective.cost", f"{where} was created {kind}; use a new study name")
    if stored_directions[0] != spec.objective.direction:
        raise SpecError(
            spec.source,
            "objective.direction",
            f"{where} was created to {stored_directions[0]}; use a new study name",
        )
    stored_spec = study.user_attrs.get("spec") or {}
    version = stored_version(stored_spec)
    if version > SCHEMA_VERSION:
        raise SpecError(
            spec.source,
            "schema_version",
            f"{where} was stored by a newer hpsearch (schema version {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade hpsearch to resume it",
        )
    if version < SAMPLES_AXIS_SINCE and any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        # Its pruner compared trials by optimizer step; new trials report by samples seen: mixed, the
        # pruner would compare unlike points. Reading, reporting and exporting it still work.
        raise SpecError(
            spec.source,
            "schema_version",
            f"{where} was stored by an hpsearch that keyed evaluations by optimizer step (schema version "
            f"{version}); this one keys them by training samples seen (version {SCHEMA_VERSION}), and its "
            "pruner cannot compare the two: status, report and export still read it; resume it with the "
            "hpsearch that ran it, or run this study under a new name",
        )
    current = spec.to_dict()
    for section in FIXED_SECTIONS:
        before, now = stored_spec.get(section), current.get(section)
        if stored_spec and section in OFF_BEFORE_IT_EXISTED and isinstance(now, dict):
            defaults = {k: v for k, v in OFF_BEFORE_IT_EXISTED[section].items() if k in now}
            before = {**defaults, **(before or {})}
        if section == "model":  # keeping the best model or not changes no trial
            before = {k: v for k, v in (before or {}).items() if k != "save_best"} or None
            now = {k: v for k, v in now.items() if k != "save_best"}
        if isinstance(before, dict) and isinstance(now, dict):  # keys newer than the study: not compared
            now = {k: v for k, v in now.items() if k in before}
        if before is None or before == now:
            continue
        if isinstance(before, dict) and isinstance(now, dict):
            key = next(k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k))
            field, old = f"{section}.{key}", before.get(key)
        else:
            field, old = section, before
        raise SpecError(spec.source, field, f"{where} ran with {old!r}; resume with it or use a new study name")
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
                f"{where} searched it as {stored[name]}; change it back or use a new study name",
            ) from None


def check_data(spec: Spec, study: optuna.Study, prepared: preflight.Prepared) -> None:
    """A resumed study's trials ran on the data now read: the same fingerprint (every trial records it;
    a study from before trials did has nothing to compare) and the same labels."""
    trials = study.get_trials(deepcopy=False)
    now = prepared.raw.fingerprint
    other = sorted({t.user_attrs.get(TrialAttr.DATA_FINGERPRINT, now) for t in trials} - {now})
    labels = study.user_attrs.get(StudyAttr.LABELS)
    if other:
        changed = f"had fingerprint {', '.join(other)}; it now reads as {now}"
    elif trials and labels is not None and list(labels) != list(prepared.labels):
        changed = f"had labels {', '.join(labels)}; it now has {', '.join(prepared.labels)}"
    else:
        return
    raise SpecError(
        spec.source,
        "data.path",
        f"{spec.data.path} changed since the stored study {spec.name!r} ran on it (the data {changed}): its "
        "trials would not be comparable; restore that data, or use a new study name",
    )


@contextmanager
def _interrupt_once():
    """SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop, `kill`) end the run: trial recorded, exit 130.

    Only the first signal interrupts; later ones are ignored while the process records its trial and
    exits. (A worker whose `hpsearch run` is killed gets the parent-death SIGTERM once per thread of
    the dead process; a second interrupt would cut its record short.) One that Python drops, because it
    came during a finalizer, is sent again: a scheduler's single SIGTERM must stop the run. One that
    comes while a finished trial is recorded waits until it is (`training/closing.py`).
    """
    fired: int | None = None  # the signal that interrupted
    active = True

    def interrupt(signum, frame):
        nonlocal fired
        if fired is None:
            fired = signum
            if not closing.defer():  # a finished trial's record is being written: the worker stops after it
                raise KeyboardInterrupt

    def again(signum: int) -> None:
        if active:
            os.kill(os.getpid(), signum)

    def swallowed(info) -> None:
        # The signal came while Python ran a finalizer or a weakref callback (the garbage collector),
        # where an exception is printed and dropped ("Exception ignored in ..."): the run would go on.
        # Send it again shortly (Slurm's scancel sends one SIGTERM), once this frame is left.
        nonlocal fired
        if isinstance(info.exc_value, KeyboardInterrupt) and fired is not None:
            signum, fired = fired, None
            threading.Timer(0.05, again, (signum,)).start()
        else:
            hook(info)

    closing.release()  # nothing held from an earlier run in this process
    hook, sys.unraisablehook = sys.unraisablehook, swallowed
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        active = False
        sys.unraisablehook = hook
        for s, handler in previous.items():
            signal.signal(s, handler)


def attach(spec: Spec, prepared: preflight.Prepared) -> optuna.Study:
    """Create the study, or load it and refuse a resume that would change what its trials mean."""
    study = worker.open_study(spec, open_storage(prepared.storage_url, create=True))
    check_resume(spec, study)
    check_data(spec, study, prepared)
    study.set_user_attr(StudyAttr.SPEC, spec.to_dict())
    study.set_user_attr(StudyAttr.LABELS, list(prepared.labels))
    study.set_user_attr(StudyAttr.HPSEARCH_VERSION, __version__)
    return study


def run(
    spec: Spec, storage_override: str | None = None, quiet: bool = False, workers: int = 1, argv=(), seeds=()
) -> int:
    """Run or resume the sweep; returns the exit status (KeyboardInterrupt propagates).

    With one worker, trials run in this process. With more, this process starts `hpsearch worker`
    processes (`argv` carries the study file and its --set overrides to them), relays their progress
    and restarts one that dies; they share the study through the storage. `seeds` (`warm_start.plan`:
    --enqueue, --warm-start) are queued once the study exists, to run before the sampler draws.
    """

    def sweep(study: optuna.Study, prepared: preflight.Prepared, progress: Progress) -> None:
        if workers == 1:
            worker.work(spec, prepared.storage_url, progress, prepared)
            return
        budget = worker.Budget(prepared.total_trials, spec.budget.device_hours)
        per_trial = spec.resources.devices_per_trial
        pool.run(workers, list(argv), prepared.storage_url, progress, budget, study, spec.budget.timeout, per_trial)

    this_run = _session(spec, storage_override, quiet, sweep, joining=False, seeds=seeds)
    if this_run and optuna.trial.TrialState.COMPLETE not in this_run and optuna.trial.TrialState.FAIL in this_run:
        return 1
    return 0


def join(spec: Spec, storage_override: str | None = None, quiet: bool = False, summary: bool = True) -> int:
    """`hpsearch worker`: join the study (creating it if this is the first worker) and run trials
    until its budget is met. Any number of these, on any machines, can share one storage.
    `summary=False` (a worker started by `run --workers`) leaves the opening and closing lines to `run`."""

    def sweep(study: optuna.Study, prepared: preflight.Prepared, progress: Progress) -> None:
        worker.work(spec, prepared.storage_url, progress, prepared, salt=os.getpid())

    _session(spec, storage_override, quiet, sweep, joining=True, summary=summary)
    return 0


def _session(
    spec: Spec,
    storage_override: str | None,
    quiet: bool,
    sweep: Callable[[optuna.Study, preflight.Prepared, Progress], None],
    joining: bool,
    summary: bool = True,
    seeds=(),
) -> list[optuna.trial.TrialState]:
    """The one body of `run` and `join`: preflight, attach to the study, say where it stands, queue the
    seeds, sweep until interrupted or done, sum up. `run` (not `joining`) also re-runs interrupted trials.
    Returns the states of the trials this session added."""
    prepared = preflight.check(spec, storage_override)
    worker.quiet_libraries()
    progress = Progress(spec.objective.metric, quiet=quiet, cost=spec.objective.cost)
    study = attach(spec, prepared)
    requeued = 0 if joining else worker.requeue_interrupted(study)
    first_new = len(study.get_trials(deepcopy=False)) - requeued
    progress.resume(study)
    if summary:
        total = "?" if prepared.total_trials is None else prepared.total_trials
        who = f"worker {WORKER} joined study {spec.name}" if joining else f"study {spec.name}"
        progress.say(
            f"{who}: {worker.counted(study)}/{total} trials done in {redact(prepared.storage_url)}"
            + (f"; re-running {requeued} interrupted" if requeued else "")
        )
        for note in notes(spec):
            progress.say(note, always=True)
    if seeds:
        from hpsearch.orchestration import enqueue

        enqueue.enqueue(study, seeds, progress.say, prepared.total_trials)
    started = time.time()
    try:
        with _interrupt_once(), progress.live(study, prepared.total_trials, worker.counted):
            sweep(study, prepared, progress)
    finally:
        if summary:
            progress.summary(study, started)
    return [t.state for t in study.get_trials(deepcopy=False) if t.number >= first_new]
