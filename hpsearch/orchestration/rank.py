"""One rank of a multi-device trial, started by torchrun for `ranks.run_on_ranks`; or, with `launch` first,
torchrun itself (its agent gets SIGTERM when the worker dies, and stops the ranks):

    python -m hpsearch.orchestration.rank launch --standalone --nproc-per-node=2 --max-restarts=0 \\
        -m hpsearch.orchestration.rank FOLDER TRIAL_ID QUIET      # the storage URL in HPSEARCH_STORAGE

Rank 0 opens the worker's trial on the storage and runs the normal fine-tune path (reporting, pruning,
recording); the other ranks train the same params (broadcast from rank 0) and write nothing to the storage.
Each leaves FOLDER/rankR.json: how it ended and the step it left training at.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.orchestration import pool
from hpsearch.orchestration.ranks import SPEC_FILE, rank_file

if TYPE_CHECKING:
    from hpsearch.training.distributed import Ranks

# The rest is imported in the ranks only: the launcher (torchrun) needs none of transformers.


def _launch(argv: list[str]) -> None:
    from torch.distributed.run import main as torchrun

    pool.die_with_parent()  # the worker (HPSEARCH_PARENT_PID) gone: stop, and the agent stops the ranks
    os.environ["HPSEARCH_PARENT_PID"] = str(os.getpid())  # the ranks' parent: this process
    torchrun(argv)


def _group(spec) -> Ranks:
    """The default process group (gloo on CPU, nccl on GPUs: Trainer's DDP uses it) and a gloo group for
    rank 0's decisions."""
    import torch
    import torch.distributed as dist

    from hpsearch.training.distributed import Ranks
    from hpsearch.training.trainer import on_gpu

    cuda = on_gpu(spec.train)
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    group = dist.new_group(backend="gloo") if cuda else dist.group.WORLD
    return Ranks(dist.get_rank(), dist.get_world_size(), group)


def _trial(spec, storage_url: str, trial_id: int, ranks: Ranks):
    """Rank 0: the worker's trial, opened on the storage; the others: a FollowerTrial of its params."""
    import optuna

    from hpsearch.results.storage import open_storage
    from hpsearch.search import pruners
    from hpsearch.training.distributed import FollowerTrial

    trial = None
    if ranks.lead:
        storage = open_storage(storage_url, create=False)
        # The params are drawn already (by the worker): this sampler is never asked.
        sampler, pruner = optuna.samplers.RandomSampler(), pruners.build_pruner(spec)
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
        trial = optuna.trial.Trial(study, trial_id)
    params, number, attrs = ranks.share(None if trial is None else (trial.params, trial.number, trial.user_attrs))
    return trial or FollowerTrial(params, number, attrs)


def _run(folder: Path, trial_id: int, quiet: bool, end: dict) -> None:
    import optuna

    from hpsearch.orchestration import preflight, worker
    from hpsearch.orchestration.progress import EVENTS_ENV, Progress
    from hpsearch.results.record import TrialAttr
    from hpsearch.training.trial import run_trial

    spec = pickle.loads((folder / SPEC_FILE).read_bytes())
    storage_url = os.environ["HPSEARCH_STORAGE"]
    worker.quiet_libraries()
    ranks = _group(spec)
    if not ranks.lead:  # one rank speaks for the trial
        os.environ.pop(EVENTS_ENV, None)
    progress = Progress(spec.objective.metric, quiet=quiet, cost=spec.objective.cost)
    progress.stream = sys.stdout if ranks.lead else None
    prepared = preflight.check(spec, storage_url)
    ctx = worker.prepare(spec, progress, prepared)
    choices = {name: dataclasses.replace(c, ranks=ranks) for name, c in ctx.choices.items()}
    ctx = dataclasses.replace(ctx, ranks=ranks, choices=choices)
    trial = _trial(spec, storage_url, trial_id, ranks)
    if ranks.lead:
        progress.resume(trial.study)
    try:
        value = run_trial(trial, ctx)
        end.update(state="complete", values=list(value) if isinstance(value, tuple) else [value])
    except optuna.TrialPruned as exc:
        end.update(state="pruned", reason=str(exc))
    finally:  # the step it left training at, as its record says (rank 0's is the trial's)
        end["steps"] = trial.user_attrs.get(TrialAttr.STEPS_TRAINED)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "launch":
        _launch(argv[1:])
        return 0
    folder, trial_id, quiet = Path(argv[0]), int(argv[1]), argv[2] == "1"
    rank = int(os.environ["RANK"])
    end: dict = {"rank": rank}

    def leave(state: str) -> None:
        rank_file(folder, rank).write_text(json.dumps({**end, "state": end.get("state", state)}))

    def stopped(signum, frame) -> None:  # torchrun's agent stops the ranks: another one failed or died
        leave("terminated")
        os._exit(128 + signum)

    pool.die_with_parent()
    signal.signal(signal.SIGTERM, stopped)
    try:
        _run(folder, trial_id, quiet, end)
    except Exception as exc:  # rank 0 recorded it on the trial too, when it came from the training
        end.update(state="fail", error=f"{type(exc).__name__}: {exc}"[:2000])
    leave(end["state"])
    # A failed rank exits non-zero: torchrun's agent then stops the others, which may wait on it in DDP.
    return 1 if end["state"] == "fail" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
