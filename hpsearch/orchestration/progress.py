"""Live progress of a sweep on the terminal: one line per trial start, evaluation and end."""

from __future__ import annotations

import sys
import time

import optuna

from hpsearch.results.format import format_params, format_value


class Progress:
    def __init__(self, metric: str, quiet: bool = False, stream=None, cost: str | None = None) -> None:
        self.metric = metric
        self.cost = cost  # the second objective's name (objective.cost), or None
        self.front = 0  # with a cost: trials on the Pareto front, shown instead of a best
        self.key = f"eval_{metric}"
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.best: tuple[int, float] | None = None

    def say(self, line: str, always: bool = False) -> None:
        if self.stream is None or not (always or not self.quiet):
            return
        try:
            print(line, file=self.stream, flush=True)
        except OSError:  # nobody reads any more (a worker whose `hpsearch run` was killed): run on silently
            self.stream = None

    def _best(self) -> str:
        if self.cost is not None:
            return f"front {self.front} trial{'' if self.front == 1 else 's'}" if self.front else "front -"
        if self.best is None:
            return "best -"
        return f"best {format_value(self.best[1])} (trial {self.best[0]})"

    def resume(self, study: optuna.Study) -> None:
        """Start from the stored study's best (or Pareto front), so a resumed run's lines show it."""
        if len(study.directions) > 1:
            self.front = len(study.best_trials)
            return
        try:
            self.best = (study.best_trial.number, study.best_value)
        except ValueError:
            pass

    def values(self, values: list[float]) -> str:
        """A completed trial's objectives: `accuracy=0.9`, or `accuracy=0.9 device_seconds=12.3`."""
        names = [self.metric, self.cost or "cost"]
        return " ".join(f"{name}={format_value(v)}" for name, v in zip(names, values, strict=False))

    def started(self, number: int, params: dict) -> None:
        self.say(f"trial {number:>3}  start     {format_params(params)}")

    def evaluated(self, number: int, point: dict, max_steps: int) -> None:
        extra = "" if self.key == "eval_loss" else f"  eval_loss={format_value(point.get('eval_loss'))}"
        self.say(
            f"trial {number:>3}  step {point['step']:>5}/{max_steps:<5} "
            f"{self.metric}={format_value(point.get(self.key))}{extra}  {self._best()}"
        )

    def finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: called after every trial, whatever its state."""
        self.resume(study)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        state = trial.state.name
        if state == "COMPLETE":
            detail = self.values(trial.values)
            if "early_stopped_at_step" in trial.user_attrs:
                detail += f" (stopped early at step {trial.user_attrs['early_stopped_at_step']})"
        elif state == "PRUNED":
            detail = f"at step {trial.user_attrs.get('steps_trained', '?')}"
            if trial.user_attrs.get("prune_reason", "pruner") != "pruner":
                detail += f" ({trial.user_attrs['prune_reason']})"
        else:
            detail = trial.user_attrs.get("error", "")
        self.say(f"trial {trial.number:>3}  {state:<9} {detail}  {seconds:.1f}s  {self._best()}")

    def summary(self, study: optuna.Study, started: float) -> None:
        self.resume(study)  # other workers' trials too
        counts: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        line = f"study {study.study_name}: {states} ({time.time() - started:.0f}s this run)"
        if self.best is not None or self.front:
            line += f"; {self._best()}"
        self.say(line, always=True)
