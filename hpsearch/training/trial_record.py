"""What a trial records about its run however it ended (times, how far it trained, throughput, memory,
the pruner's evidence, the package versions), and the write of the whole record as the trial's user attributes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna

from hpsearch.results import versions
from hpsearch.results.record import CurveKey, TrialAttr
from hpsearch.training import memory
from hpsearch.training.trainer import generated_examples

if TYPE_CHECKING:
    from hpsearch.orchestration.progress import Progress


def slurm_job(env: Mapping[str, str]) -> str | None:
    """The Slurm job this process runs in (`hpsearch launch slurm`'s array task: `JOBID_INDEX`), or None."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


INTERRUPTED = {TrialAttr.ERROR: "interrupted", TrialAttr.INTERRUPTED: True}
"""What a trial cut short by Ctrl-C or SIGTERM records: it is not counted, and its re-run is queued."""


def queue_rerun(study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial) -> None:
    """One new run of an interrupted trial's params, linked to it (`retry_of`)."""
    study.enqueue_trial(trial.params, user_attrs={TrialAttr.RETRY_OF: trial.number}, skip_if_exists=False)


def record_where(trial: optuna.Trial, record: dict[str, Any], worker: str) -> None:
    """Where the trial runs, written now rather than at its end: its process `host:pid` (a restarted run
    tells its own dead trials by it) and its Slurm job (`hpsearch status` shows it for a running trial). A
    re-run of a dead trial clears the error it inherited (the dead trial keeps it)."""
    where: dict[str, Any] = {TrialAttr.WORKER: worker}
    if trial.user_attrs.get(TrialAttr.ERROR):  # a re-run: Optuna's retry copied the dead run's attributes
        where[TrialAttr.ERROR] = None
    if job := slurm_job(os.environ):
        where[TrialAttr.SLURM_JOB] = job
    record.update(where)
    for key, value in where.items():
        trial.set_user_attr(key, value)


def record_run(record: dict[str, Any], attempt, wall_time_s: float) -> None:
    """What the run took, however it ended: times, how far it trained, throughput, peak memory; and the
    versions of the packages it ran with (read now, at its end: what it imported is in sys.modules)."""
    record[TrialAttr.VERSIONS] = versions.current()
    record[TrialAttr.WALL_TIME_S] = round(wall_time_s, 3)
    if attempt.reporter is not None and attempt.reporter.spared:
        record[TrialAttr.SPARED] = attempt.reporter.spared
    record[TrialAttr.DEVICE_SECONDS] = record[TrialAttr.WALL_TIME_S]  # one device for its whole run
    curve = record.get(TrialAttr.CURVE)
    if curve is not None:  # training started: the gap at its last evaluation (None without one)
        record[TrialAttr.TRAIN_EVAL_GAP] = curve[-1].get(CurveKey.TRAIN_EVAL_GAP) if curve else None
    trainer = attempt.trainer
    if trainer is None:
        return
    state = trainer.state
    record.update({TrialAttr.STEPS_TRAINED: state.global_step, TrialAttr.MAX_STEPS: state.max_steps})
    if attempt.train_started is not None:
        # Trainer's own figure when training finished; for a pruned trial, the same measure by hand.
        train_seconds = (attempt.train_ended or time.perf_counter()) - attempt.train_started
        record[TrialAttr.TRAIN_SECONDS] = round(train_seconds, 3)
        if record.get(TrialAttr.TRAIN_SAMPLES_PER_SECOND) is None and train_seconds > 0:
            per_step = trainer.args.train_batch_size * trainer.args.gradient_accumulation_steps
            record[TrialAttr.TRAIN_SAMPLES_PER_SECOND] = round(state.global_step * per_step / train_seconds, 3)
    record[TrialAttr.PEAK_MEMORY_MB] = round(memory.peak_memory_mb(trainer.args.device), 1)
    examples = generated_examples(trainer)
    if examples:
        record[TrialAttr.GENERATED_EXAMPLES] = examples


def save_record(trial: optuna.Trial, record: dict[str, Any], progress: Progress) -> None:
    """Write the record as user attributes; a failure here must not hide the trial's own outcome."""
    for key, value in record.items():
        try:
            trial.set_user_attr(str(key), json.loads(json.dumps(value, default=str)))
        except Exception as exc:  # e.g. the database is locked past its timeout
            progress.say(f"trial {trial.number:>3}  warning: could not record {key}: {exc}", always=True)
