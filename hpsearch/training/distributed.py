"""One trial on several processes (DDP, `resources.devices_per_trial`): where a rank stands, the trial the
other ranks train under (rank 0's, read-only), and the callback that makes rank 0's decisions every rank's.

Rank 0 alone reports to Optuna and decides: prune, divergence, early stopping. Every rank must still leave
training at the same step, or the others would wait in DDP's next all-reduce for a rank that left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
import torch
import torch.distributed as dist
from transformers import TrainerCallback

# What rank 0 decided at an evaluation (or a logged train loss), broadcast as one integer.
GO_ON, PRUNE, STOP = 0, 1, 2


@dataclass(frozen=True)
class Ranks:
    """This process's place among the trial's ranks."""

    rank: int
    world: int
    group: Any  # a gloo group for the decisions: a small CPU tensor whatever backend the training uses

    @property
    def lead(self) -> bool:
        """Rank 0: it owns the Optuna trial (reports, decides, records); the others follow."""
        return self.rank == 0

    def share(self, payload: Any) -> Any:
        """Rank 0's `payload` on every rank (pickled: for small things such as the params)."""
        box = [payload if self.lead else None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]


class FollowerTrial(optuna.trial.FixedTrial):
    """The trial as a rank other than 0 sees it: rank 0's params and user attributes (a confirmation's
    seed among them); it reports nothing and never prunes, and what it records stays in this process."""

    def __init__(self, params: dict[str, Any], number: int, user_attrs: dict[str, Any]) -> None:
        super().__init__(params, number)
        self._user_attrs.update(user_attrs)


class RankAgreement(TrainerCallback):
    """After the reporter and the early stopper: at every evaluation, and every logged train loss (what
    the divergence guard reads), rank 0 broadcasts what it decided and every rank acts on it there.

    The reporter on rank 0 defers its prune (`OptunaReporter.defer`) so that the broadcast still runs;
    here every rank raises TrialPruned (rank 0 the reporter's own), or stops training like the stopper.
    """

    def __init__(self, ranks: Ranks, reporter, stopper=None) -> None:
        self.ranks = ranks
        self.reporter = reporter
        self.stopper = stopper

    def _decision(self, step: int) -> int:
        if not self.ranks.lead:
            return GO_ON
        if self.reporter.pending is not None:
            return PRUNE
        return STOP if self.stopper is not None and self.stopper.stopped_at == step else GO_ON

    def _agree(self, state, control) -> None:
        flag = torch.tensor([self._decision(state.global_step)], dtype=torch.int64)
        dist.broadcast(flag, src=0, group=self.ranks.group)
        decision = int(flag.item())
        if decision == PRUNE:
            pending = self.reporter.pending
            self.reporter.pending = None
            raise pending if self.ranks.lead else optuna.TrialPruned("pruned by rank 0")
        if decision == STOP and self.reporter.training:
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:  # every rank logs the (all-reduced) train loss at the same steps
            self._agree(state, control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._agree(state, control)
