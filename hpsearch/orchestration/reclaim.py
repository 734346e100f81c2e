"""A restarted run does not wait for its own dead trials: a RUNNING trial whose process, on this host, no longer
exists is failed and queued again at once, as a stale heartbeat would after its grace period; and a worker
that waits for another host's running trial says which trial and for how long."""

from __future__ import annotations

import copy
import os
import time
import warnings

import optuna

from hpsearch.results.record import TrialAttr
from hpsearch.training.scratch import HOST, alive

RUNNING, FAIL = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL


def _worker(t: optuna.trial.FrozenTrial) -> tuple[str, int] | None:
    host, _, pid = str(t.user_attrs.get(TrialAttr.WORKER, "")).rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def dead_here(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials of a process of this host that no longer exists."""
    out = []
    for t in trials:
        where = _worker(t) if t.state == RUNNING else None
        if where is not None and where[0] == HOST and where[1] != os.getpid() and not alive(where[1]):
            out.append(t)
    return out


def reclaim(study: optuna.Study, say) -> list[int]:
    """Fail this host's dead RUNNING trials and queue each one's re-run (the storage's stale-trial callback,
    the one its heartbeat uses, so the re-run and its retry count are the same); returns their numbers."""
    storage = study._storage
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if retry is None:  # a storage opened without heartbeats: re-run it all the same
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback()
    reclaimed = []
    for t in dead_here(study.get_trials(deepcopy=False)):
        reason = f"its process {t.user_attrs[TrialAttr.WORKER]} no longer exists: re-run at once"
        try:  # the reason while it still runs (a finished trial's attributes are fixed), then the failure
            storage.set_trial_user_attr(t._trial_id, TrialAttr.ERROR, reason)
            if not storage.set_trial_state_values(t._trial_id, state=FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another process got there first
            continue
        retry(study, copy.deepcopy(storage.get_trial(t._trial_id)))
        reclaimed.append(t.number)
        say(f"trial {t.number}: {reason}")
    return reclaimed


class Waiting:
    """What a worker with nothing to start says while others' trials run: which, whose, and for how long
    (once, then every `every` seconds; for trials of this host only, whose processes are alive, from
    `every` seconds on, without the heartbeat's grace period, which does not apply to them)."""

    def __init__(self, grace_period: float, every: float = 30.0) -> None:
        self.grace_period = grace_period
        self.every = every
        self.since: float | None = None
        self._said = -float("inf")

    def tick(self, study: optuna.Study, say) -> None:
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        if now - self._said < self.every:
            return
        running = [t for t in study.get_trials(deepcopy=False) if t.state == RUNNING]
        elsewhere = [t for t in running if (_worker(t) or ("",))[0] != HOST]
        if not elsewhere and now - self.since < self.every:
            return  # this host's trials, their processes alive (a dead one is re-run at once): nothing to say yet
        self._said = now
        whose = ", ".join(f"trial {t.number} ({t.user_attrs.get(TrialAttr.WORKER, 'a worker')})" for t in running)
        waited = f"waiting {now - self.since:.0f} s for {whose or 'running trials'}"
        if not elsewhere:
            say(f"{waited} to finish (on this host)")
            return
        say(f"{waited}: a trial whose worker died is re-run once its heartbeat is {self.grace_period:.0f} s old")

    def done(self) -> None:
        self.since, self._said = None, -float("inf")
