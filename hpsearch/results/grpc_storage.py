"""A study's storage reached through an `hpsearch storage-server` (grpc://HOST:PORT): Optuna's gRPC proxy
client, plus the heartbeats the proxy lacks, so that a dead worker's trial is still found and re-run."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import NotFound
from hpsearch.spec.sections import HeartbeatSpec
from hpsearch.spec.storage_url import grpc_address

# How long a process waits for the server to answer: workers of a batch job may start a little before it.
CONNECT_TIMEOUT_S = 20
# A running trial's latest heartbeat, [trial_id, unix time]: the id because a re-run copies its failed trial's
# system attributes, and the copy's old time must not make the re-run look dead before its first beat.
HEARTBEAT_ATTR = "hpsearch:heartbeat"


class HeartbeatGrpcStorage(GrpcStorageProxy, BaseHeartbeat):
    """The proxy does not forward RDBStorage's heartbeat table; this keeps each running trial's heartbeat in
    a trial system attribute instead, written and judged by the workers' own clocks (they must agree to well
    within heartbeat.grace_period, as NTP keeps them). Optuna's optimize loop and `fail_stale_trials` use it
    as they use RDBStorage's, with the same stale-trial callback (re-run up to heartbeat.max_retries times)."""

    def __init__(self, *, host: str, port: int, heartbeat: HeartbeatSpec) -> None:
        self._interval = heartbeat.interval
        self._grace_period = heartbeat.grace_period
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retries)
        super().__init__(host=host, port=port)

    def record_heartbeat(self, trial_id: int) -> None:
        import grpc

        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, [trial_id, time.time()])
        except (UpdateFinishedTrialError, KeyError):  # it finished (or was failed as stale) since the last beat
            pass
        except grpc.RpcError:  # the server is restarting: the next beat tries again (a dead thread would not)
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Running trials whose own heartbeat is older than the grace period. A trial with none (one run by
        a worker on the database directly, which beats in RDBStorage's table) is left to its own kind."""
        before = time.time() - self._grace_period
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if isinstance(beat, list) and len(beat) == 2 and beat[0] == t._trial_id and beat[1] < before:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._retry


def open_grpc(url: str, heartbeat: HeartbeatSpec | None = None) -> BaseStorage:
    """The proxy client for grpc://HOST:PORT once the server answers; with `heartbeat`, one that sends them.
    No answer within CONNECT_TIMEOUT_S is NotFound (exit 2), not a wait without end."""
    host, port = grpc_address(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat is None:
            storage = GrpcStorageProxy(host=host, port=port)
        else:
            storage = HeartbeatGrpcStorage(host=host, port=port, heartbeat=heartbeat)
    try:
        storage.wait_server_ready(timeout=CONNECT_TIMEOUT_S)
    except ConnectionError:
        storage.close()
        raise NotFound(
            f"no storage server answers at {url} (waited {CONNECT_TIMEOUT_S} s): start one next to the database"
            f" with `hpsearch storage-server --storage DATABASE_URL --port {port}`"
        ) from None
    return storage
