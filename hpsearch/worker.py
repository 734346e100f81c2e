"""A worker: given a spec and a storage URL, prepare once, then pull trials until the budget is met.

It needs nothing but those two, so any process on any machine that reaches the storage can be one.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna

from hpsearch import data, pruners, samplers, space
from hpsearch.progress import Progress
from hpsearch.spec import Spec
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


def total_trials(spec: Spec) -> int | None:
    """budget.n_trials, or the grid size for a grid study without one."""
    if spec.budget.n_trials is not None:
        return spec.budget.n_trials
    if spec.sampler.type == "grid":
        return space.grid_size(spec.search, spec.source)
    return None


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials the budget counts: every finished one except those the user interrupted."""
    return trial.state in FINISHED and not trial.user_attrs.get("interrupted")


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


class _StopAtBudget:
    """Stop when the study (all workers together) has the budgeted number of counted trials."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if sum(counted(t) for t in study.get_trials(deepcopy=False)) >= self.total:
            study.stop()


def prepare(spec: Spec, progress: Progress, model_path: str, raw: data.RawData) -> TrialContext:
    """Everything trials share: the tokenizer and the tokenized data (cached on disk)."""
    from transformers import AutoTokenizer

    task = TASKS[spec.task]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    task_data = task.prepare(spec, raw, tokenizer)
    best_dir = Path(spec.source).resolve().parent / f"{spec.name}.best" / "model" if spec.model.save_best else None
    return TrialContext(
        spec=spec,
        task=task,
        data=task_data,
        tokenizer=tokenizer,
        model_path=model_path,
        best_model_dir=best_dir,
        progress=progress,
    )


def work(spec: Spec, study: optuna.Study, ctx: TrialContext, timeout: float | None = None) -> None:
    """Run trials of `study` until its budget is met (or the timeout passes)."""
    total = total_trials(spec)
    callbacks = [ctx.progress.finished]
    n_trials = None
    if total is not None:
        done = sum(counted(t) for t in study.get_trials(deepcopy=False))
        n_trials = max(total - done, 0)
        callbacks.append(_StopAtBudget(total))
        if n_trials == 0:
            return
    study.optimize(
        lambda trial: run_trial(trial, ctx),
        n_trials=n_trials,
        timeout=timeout,
        catch=(Exception,),
        callbacks=callbacks,
        gc_after_trial=True,
    )


def open_study(spec: Spec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=samplers.build_sampler(spec),
        pruner=pruners.build_pruner(spec),
        direction=spec.objective.direction,
        load_if_exists=True,
    )
