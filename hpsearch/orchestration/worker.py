"""A worker: given a spec and a storage URL, prepare once, then pull trials until the budget is met.

It needs nothing but those two (and what preflight already loaded, if it ran in the same process),
so any process on any machine that reaches the storage can be one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path

import optuna

from hpsearch.errors import EXIT_DEVICE
from hpsearch.orchestration import preflight, ranks, reclaim
from hpsearch.orchestration.progress import Progress
from hpsearch.results import status
from hpsearch.results.record import TrialAttr
from hpsearch.results.storage import open_storage
from hpsearch.search import pruners, samplers
from hpsearch.spec import Spec, SpecError
from hpsearch.spec.training_args import OLD_NAME_WARNING
from hpsearch.tasks import TASKS
from hpsearch.training import closing, memory, scratch
from hpsearch.training.context import TrialContext
from hpsearch.training.trial import run_trial
from hpsearch.training.trial_record import queue_rerun

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def quiet_libraries() -> None:
    """Our progress lines replace the libraries' own logs and bars."""
    import datasets
    import transformers

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Trainer asks for pinned memory by default; without an accelerator that only warns.
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator.*")
    # An old argument name warns at every TrainingArguments built; run says it once (training.trainer.notes).
    warnings.filterwarnings("ignore", message=OLD_NAME_WARNING, category=FutureWarning)
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger("accelerate").setLevel(logging.ERROR)


RUNNING, WAITING = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING


def _uncounted(t: optuna.trial.FrozenTrial, dead: set[int]) -> bool:
    """A trial the budget does not count: interrupted (its re-run counts), died and re-run, or skipped."""
    return bool(t.user_attrs.get(TrialAttr.INTERRUPTED) or t.user_attrs.get(TrialAttr.SKIPPED)) or t.number in dead


def counted(study: optuna.Study) -> int:
    """Trials the budget counts: every finished one except those the user interrupted, those that
    died and were re-run (their re-run counts instead) and those skipped before they started."""
    trials = study.get_trials(deepcopy=False)
    dead = status.retried(trials)
    return sum(t.state in FINISHED and not _uncounted(t, dead) for t in trials)


def requeue_interrupted(study: optuna.Study) -> int:
    """Give each trial cut short by Ctrl-C one new run with the same params, so nothing is lost.

    The interrupted process queues its own trial's re-run (`run_trial`); this catches up a study
    where that did not happen. Only `hpsearch run` calls it, before any worker starts.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(TrialAttr.RETRY_OF) for t in trials}
    requeued = 0
    for t in trials:
        if t.user_attrs.get(TrialAttr.INTERRUPTED) and t.number not in retried:
            queue_rerun(study, t)
            requeued += 1
    return requeued


def device_seconds(study: optuna.Study) -> float:
    """Compute the study has spent: every trial's device-seconds, whatever its state."""
    return sum(t.user_attrs.get(TrialAttr.DEVICE_SECONDS, 0.0) for t in study.get_trials(deepcopy=False))


class Budget:
    """The study's budget, shared by every worker through the storage: trials and device-hours."""

    def __init__(self, total: int | None, device_hours: float | None) -> None:
        self.total = total
        self.device_hours = device_hours

    def spent(self, study: optuna.Study) -> bool:
        if self.total is not None and counted(study) >= self.total:
            return True
        return self.device_hours is not None and device_seconds(study) >= self.device_hours * 3600

    def next_step(self, study: optuna.Study) -> str:
        """What a worker does now: "run" a trial, "wait" for others' running trials, or "stop".

        Queued trials (re-runs) are always run. A new trial starts only while the finished and running
        trials leave room in the budget, so workers never start more trials than requested; a worker
        with nothing to start waits while others run, because a trial whose worker died comes back
        as a queued re-run once its heartbeat is stale, and must still be run.
        """
        if self.spent(study):
            return "stop"
        trials = study.get_trials(deepcopy=False)
        if any(t.state == WAITING for t in trials):
            return "run"
        running = sum(t.state == RUNNING for t in trials)
        if self.total is None or counted(study) + running < self.total:
            return "run"
        return "wait" if running else "stop"


def skip_reason(trial: optuna.Trial, total: int | None) -> str | None:
    """Why a trial just created must not run, or None.

    Two workers can decide to start a trial at the same moment. When that would exceed the budget,
    or give both the same grid point (Optuna's GridSampler hands out points still running once every
    point has started), the trial with the higher number is skipped before it trains.
    """
    storage = trial.study._storage
    system = storage.get_trial_system_attrs(trial._trial_id)
    if "fixed_params" in system or "failed_trial" in system:  # a queued re-run: always runs
        return None
    trials = trial.study.get_trials(deepcopy=False)
    dead = status.retried(trials)
    others = [t for t in trials if t.number != trial.number and not _uncounted(t, dead)]
    grid_id = system.get("grid_id")
    if grid_id is not None:
        for t in others:
            if t.system_attrs.get("grid_id") == grid_id and (t.state in FINISHED or t.number < trial.number):
                return f"grid point {grid_id} is trial {t.number}'s"
    if total is not None:
        ahead = sum(t.state in FINISHED or (t.state == RUNNING and t.number < trial.number) for t in others)
        if ahead >= total:
            return f"budget of {total} trials already started"
    return None


def open_study(spec: Spec, storage: optuna.storages.BaseStorage, salt: int = 0) -> optuna.Study:
    """Create the study, or load it with a sampler seeded for where it stands (and, for one of
    several workers, for which worker it is: `salt`)."""
    try:
        existing = len(storage.get_all_trials(storage.get_study_id_from_name(spec.name), deepcopy=False))
    except KeyError:
        existing = 0
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=samplers.build_sampler(spec, existing, salt),
        pruner=pruners.build_pruner(spec),
        directions=spec.objective.directions,
        load_if_exists=True,
    )


def prepare(spec: Spec, progress: Progress, prepared: preflight.Prepared) -> TrialContext:
    """Everything trials share: the tokenizer and the tokenized data (cached on disk).

    With search.model, every choice's tokenizer and data are prepared here, up front: tokenizing is
    cached on disk per tokenizer, so this is each choice's one-time cost, paid before any trial
    rather than inside the first trial that draws the choice (its wall time and device-seconds,
    which budget.device_hours counts and the report compares across models, stay the training's).
    """
    task = TASKS[spec.task]
    best_dir = Path(spec.source).resolve().parent / f"{spec.name}.best" / "model" if spec.model.save_best else None

    def context(model: preflight.LoadedModel) -> TrialContext:
        return TrialContext(
            spec=spec,
            task=task,
            data=task.prepare(spec, prepared.raw, model.tokenizer),
            tokenizer=model.tokenizer,
            model_path=model.path,
            best_model_dir=best_dir,
            progress=progress,
            dropout_attributes=model.dropout_attributes,
            raw=prepared.raw,
        )

    if not spec.model.choices:
        return context(prepared.model_for(spec, {}))
    choices = {}
    for choice, model in prepared.models.items():
        try:
            choices[choice] = context(model)
        except SpecError as exc:
            raise preflight.naming_choice(exc, choice) from None
    return dataclasses.replace(next(iter(choices.values())), choices=choices)


def work(
    spec: Spec, storage_url: str, progress: Progress, prepared: preflight.Prepared | None = None, salt: int = 0
) -> int:
    """Run trials of the stored study until its budget is met (or budget.timeout passes).

    Any number of workers, in any processes on any machines, can run this on the same study: each
    pulls one trial at a time and the budget is counted in the storage. Each of several workers
    passes its own `salt` (its process id), or workers started together would draw the same
    configs from identically seeded samplers. Returns the trials it ran.
    """
    prepared = prepared or preflight.check(spec, storage_url)
    ctx = prepare(spec, progress, prepared)
    study = open_study(spec, open_storage(storage_url, create=False, heartbeat=spec.heartbeat), salt)
    budget = Budget(prepared.total_trials, spec.budget.device_hours)
    deadline = None if spec.budget.timeout is None else time.monotonic() + spec.budget.timeout
    poll = min(5.0, spec.heartbeat.interval)

    broken: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        reason = skip_reason(trial, budget.total)
        if reason is not None:
            trial.set_user_attr(TrialAttr.SKIPPED, reason)
            trial.set_user_attr(TrialAttr.PRUNE_REASON, f"skipped: {reason}")
            raise optuna.TrialPruned(reason)
        try:
            if spec.resources.devices_per_trial > 1:  # the trial's ranks train; this process keeps the trial
                return ranks.run_on_ranks(trial, spec, prepared.storage_url, progress.quiet)
            return run_trial(trial, ctx)
        except Exception as exc:
            if device_broken(exc):
                broken.append(f"trial {trial.number}: {str(exc).splitlines()[0][:200]}")
            raise
        finally:
            closing.hold()  # from here to Optuna's tell, a signal waits (run_trial held it for its record)

    with memory.sweep_heap():  # what is loaded now lives as long as the worker: no collection walks it
        ran = 0
        reclaim.reclaim(study, progress.say)  # this host's dead trials (a killed run's) re-run now, not after the grace
        removed, mb = scratch.remove_orphans()  # and the scratch folders they left (a checkpoint can be gigabytes)
        if removed:
            progress.say(f"removed {removed} scratch folder(s) of dead hpsearch processes ({mb:.0f} MB)", always=True)
        waiting = reclaim.Waiting(spec.heartbeat.grace_period)
        while deadline is None or time.monotonic() < deadline:
            step = budget.next_step(study)
            if step == "stop":
                break
            if step == "wait":  # fail others' stale trials (queuing their re-runs), then look again
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                if not reclaim.reclaim(study, progress.say):
                    waiting.tick(study, progress.say)
                    time.sleep(poll)
                continue
            waiting.done()
            # No gc_after_trial: the trial's own clean-up collected.
            try:
                study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[progress.finished])
            finally:
                signalled = closing.release()
            if signalled:  # during the trial's record or its tell: both are done, the run stops now
                raise KeyboardInterrupt
            ran += 1
            if broken:  # the trial is recorded as failed; later trials in this process would fail too
                raise DeviceFailure(broken[0])
        return ran


class DeviceFailure(RuntimeError):
    """The GPU failed in a way its process cannot recover from: exit status 3, and `run --workers`
    starts the worker again (a fresh process, a fresh CUDA context)."""

    exit_status = EXIT_DEVICE

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the GPU failed ({detail}); the trial is recorded as failed. Run the same command again to go on"
            " in a fresh process."
        )


def device_broken(exc: BaseException) -> bool:
    """A CUDA error that leaves the process's CUDA context unusable (unlike out of memory, which
    `run_trial` recovers from): a device-side assert, an illegal address, a launch failure."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return False
    if isinstance(exc, torch.AcceleratorError):
        return True
    text = str(exc)
    return any(m in text for m in ("CUDA error", "device-side assert", "CUBLAS_STATUS", "cuDNN error"))
