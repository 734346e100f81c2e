"""Progress of a sweep: plain lines (one per trial start, evaluation and end) in logs and pipes; on a
terminal, the start and end lines above a live view (`live.py`) that shows the running trials."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import optuna

from hpsearch.results.format import format_params, format_value
from hpsearch.results.record import TrialAttr

if TYPE_CHECKING:
    from rich.console import Console

    from hpsearch.orchestration.live import LiveView

# `run --workers` sets this to "events" in its workers' environment when it draws the live view: each
# worker then prints its progress as JSON lines after EVENT_PREFIX for the parent, instead of the
# evaluation lines, so the parent reads data it was sent, not text meant for people.
EVENTS_ENV = "HPSEARCH_PROGRESS"
EVENT_PREFIX = "@hpsearch-progress "


def is_terminal(stream) -> bool:
    """A person watches `stream` (not a log file, a pipe, CI or a dumb terminal)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Progress:
    def __init__(self, metric: str, quiet: bool = False, stream=None, cost: str | None = None) -> None:
        self.metric = metric
        self.cost = cost  # the second objective's name (objective.cost), or None
        self.front = 0  # with a cost: trials on the Pareto front, shown instead of a best
        self.key = f"eval_{metric}"
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.best: tuple[int, float] | None = None
        self.events = os.environ.get(EVENTS_ENV) == "events"
        self.view: LiveView | None = None
        self._live = None  # rich's Live while the view is drawn: lines go through its console
        self._recount: Callable[[], int] = lambda: 0

    def say(self, line: str, always: bool = False) -> None:
        if self.stream is None or not (always or not self.quiet):
            return
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
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
        self._event({"event": "started", "trial": number, "params": params})

    def evaluated(self, number: int, point: dict, max_steps: int) -> None:
        value = point.get(self.key)
        if self.view is None and not self.events:  # the view shows the step instead of a line per evaluation
            extra = "" if self.key == "eval_loss" else f"  eval_loss={format_value(point.get('eval_loss'))}"
            self.say(
                f"trial {number:>3}  step {point['step']:>5}/{max_steps:<5} "
                f"{self.metric}={format_value(value)}{extra}  {self._best()}"
            )
        step = point["step"]
        self._event({"event": "evaluated", "trial": number, "step": step, "max_steps": max_steps, "value": value})

    def finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: called after every trial, whatever its state."""
        self.resume(study)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        state = trial.state.name
        if state == "COMPLETE":
            detail = self.values(trial.values)
            if TrialAttr.EARLY_STOPPED_AT_STEP in trial.user_attrs:
                detail += f" (stopped early at step {trial.user_attrs[TrialAttr.EARLY_STOPPED_AT_STEP]})"
        elif state == "PRUNED":
            detail = f"at step {trial.user_attrs.get(TrialAttr.STEPS_TRAINED, '?')}"
            if trial.user_attrs.get(TrialAttr.PRUNE_REASON, "pruner") != "pruner":
                detail += f" ({trial.user_attrs[TrialAttr.PRUNE_REASON]})"
        else:
            detail = trial.user_attrs.get(TrialAttr.ERROR, "")
        self.say(f"trial {trial.number:>3}  {state:<9} {detail}  {seconds:.1f}s  {self._best()}")
        self._event({"event": "finished", "trial": trial.number})

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

    @contextmanager
    def live(
        self,
        study: optuna.Study,
        total: int | None,
        counted: Callable[[optuna.Study], int],
        console: Console | None = None,
    ) -> Iterator[None]:
        """While the block runs, draw the live view on a terminal (or on `console`, for tests); in a log,
        a pipe or with --quiet, change nothing: the plain lines stay as they are."""
        if console is None:
            if self.quiet or self.events or not is_terminal(self.stream):
                yield
                return
            from rich.console import Console

            console = Console(file=self.stream)
        from rich.live import Live

        from hpsearch.orchestration.live import LiveView

        def recount() -> int:
            self.resume(study)  # other workers' trials move the best too
            return counted(study)

        self._recount = recount
        self.view = LiveView(study.study_name, self.metric, total, recount())
        self.view.best = self._best()
        live = Live(console=console, get_renderable=self.view.render, refresh_per_second=2, transient=True)
        with live:
            self._live = live
            try:
                yield
            finally:
                self._live = self.view = None

    def _event(self, event: dict) -> None:
        """Show a trial's progress in the view, or, in a worker under `run --workers`'s view, send it there."""
        if self.view is not None:
            self._show("", event)
        elif self.events:
            self.say(EVENT_PREFIX + json.dumps(event, default=str))

    def _show(self, worker: str, event: dict) -> None:
        kind, view = event.get("event"), self.view
        if kind == "started":
            view.started(worker, event["trial"], event["params"])
        elif kind == "evaluated":
            view.evaluated(worker, event["trial"], event["step"], event["max_steps"], event["value"])
        elif kind == "finished":
            view.finished(worker, self._recount(), self._best())

    def relay(self, worker: str, line: str) -> None:
        """A line from worker process `worker` (`run --workers`): an event feeds the view; any other line
        is shown as it came, after the worker's label, except a blank one (a worker's own spacing, such as
        the one before its `interrupted` line), which would show as the bare label."""
        if not line.strip():
            return
        if not line.startswith(EVENT_PREFIX):
            self.say(f"{worker} {line}", always=True)
            return
        try:
            event = json.loads(line[len(EVENT_PREFIX) :])
        except ValueError:
            return
        if self.view is not None and isinstance(event, dict):
            self._show(worker, event)

    def stopped(self, worker: str) -> None:
        """Worker process `worker` ended: its trial leaves the view (a re-run shows up when it starts)."""
        if self.view is not None:
            self.view.stopped(worker)
