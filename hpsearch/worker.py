"""A worker: given a spec and a storage URL, prepare once, then pull trials until the budget is met.

It needs nothing but those two (and what preflight already loaded, if it ran in the same process),
so any process on any machine that reaches the storage can be one.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna

from hpsearch import preflight, pruners, samplers, status
from hpsearch.progress import Progress
from hpsearch.spec import Spec
from hpsearch.storage import open_storage
from hpsearch.tasks import TASKS
from hpsearch.trial import TrialContext, run_trial

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
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger("accelerate").setLevel(logging.ERROR)


def counted(study: optuna.Study) -> int:
    """Trials the budget counts: every finished one except those the user interrupted and those
    that died and were re-run (their re-run counts instead)."""
    trials = study.get_trials(deepcopy=False)
    dead = status.retried(trials)
    return sum(t.state in FINISHED and not t.user_attrs.get("interrupted") and t.number not in dead for t in trials)


def requeue_interrupted(study: optuna.Study) -> int:
    """Give each trial cut short by Ctrl-C one new run with the same params, so nothing is lost."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    requeued = 0
    for t in trials:
        if t.user_attrs.get("interrupted") and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
            requeued += 1
    return requeued


def device_seconds(study: optuna.Study) -> float:
    """Compute the study has spent: every trial's device-seconds, whatever its state."""
    return sum(t.user_attrs.get("device_seconds", 0.0) for t in study.get_trials(deepcopy=False))


class _StopAtBudget:
    """Stop when the study (all workers together) has its budgeted trials or device-hours."""

    def __init__(self, total: int | None, device_hours: float | None) -> None:
        self.total = total
        self.device_hours = device_hours

    def spent(self, study: optuna.Study) -> bool:
        if self.total is not None and counted(study) >= self.total:
            return True
        return self.device_hours is not None and device_seconds(study) >= self.device_hours * 3600

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.spent(study):
            study.stop()


def open_study(spec: Spec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it with a sampler seeded for where it stands."""
    try:
        existing = len(storage.get_all_trials(storage.get_study_id_from_name(spec.name), deepcopy=False))
    except KeyError:
        existing = 0
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=samplers.build_sampler(spec, existing),
        pruner=pruners.build_pruner(spec),
        direction=spec.objective.direction,
        load_if_exists=True,
    )


def prepare(spec: Spec, progress: Progress, checked: preflight.Checked) -> TrialContext:
    """Everything trials share: the tokenizer and the tokenized data (cached on disk)."""
    task = TASKS[spec.task]
    task_data = task.prepare(spec, checked.raw, checked.tokenizer)
    best_dir = Path(spec.source).resolve().parent / f"{spec.name}.best" / "model" if spec.model.save_best else None
    return TrialContext(
        spec=spec,
        task=task,
        data=task_data,
        tokenizer=checked.tokenizer,
        model_path=checked.model_path,
        best_model_dir=best_dir,
        progress=progress,
    )


def work(spec: Spec, storage_url: str, progress: Progress, checked: preflight.Checked | None = None) -> None:
    """Run trials of the stored study until its budget is met (or budget.timeout passes)."""
    checked = checked or preflight.check(spec, storage_url)
    ctx = prepare(spec, progress, checked)
    study = open_study(spec, open_storage(storage_url, create=False, heartbeat=spec.heartbeat))
    budget = _StopAtBudget(checked.total_trials, spec.budget.device_hours)
    if budget.spent(study):
        return
    n_trials = None if checked.total_trials is None else checked.total_trials - counted(study)
    study.optimize(
        lambda trial: run_trial(trial, ctx),
        n_trials=n_trials,
        timeout=spec.budget.timeout,
        catch=(Exception,),
        callbacks=[progress.finished, budget],
        gc_after_trial=True,
    )
