"""The live view of a sweep on a terminal (rich): trials done against the budget with an ETA, each
worker's current trial with its step and latest metric, and the best so far. `Progress` feeds it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from hpsearch.results.format import format_params, format_value

BAR_WIDTH = 24


@dataclass
class Running:
    """One worker's current trial as the view shows it."""

    trial: int
    params: str
    step: int = 0
    max_steps: int | None = None
    value: float | None = None


def duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m: short enough for a status line."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LiveView:
    """What the view shows, updated from the worker's (or the workers') progress; `render` draws it."""

    def __init__(self, name: str, metric: str, total: int | None, done: int, clock=time.monotonic) -> None:
        self.name = name
        self.metric = metric
        self.total = total
        self.done = done
        self.best = "best -"
        self.clock = clock
        self.since = clock()
        self.done_at_start = done
        self.running: dict[str, Running] = {}  # by worker label ("" for trials in this process)

    def started(self, worker: str, trial: int, params: dict) -> None:
        self.running[worker] = Running(trial, format_params(params))

    def evaluated(self, worker: str, trial: int, step: int, max_steps: int | None, value: float | None) -> None:
        row = self.running.get(worker)
        if row is None or row.trial != trial:  # the view opened while the trial ran
            row = self.running[worker] = Running(trial, "")
        row.step, row.max_steps, row.value = step, max_steps, value

    def finished(self, worker: str, done: int, best: str) -> None:
        self.running.pop(worker, None)
        self.done, self.best = done, best

    def stopped(self, worker: str) -> None:
        self.running.pop(worker, None)

    def eta(self) -> str:
        """Time left for the trials the budget still has, at this run's pace so far (running trials
        count by their fraction of steps, so an estimate appears before the first trial ends)."""
        if self.total is None:
            return "ETA -"
        left = self.total - self.done
        if left <= 0:
            return "ETA 0s"
        partial = sum(r.step / r.max_steps for r in self.running.values() if r.max_steps)
        work = self.done - self.done_at_start + partial
        elapsed = self.clock() - self.since
        if work <= 0 or elapsed <= 0:
            return "ETA -"
        return f"ETA {duration(elapsed / work * max(left - partial, 0.0))}"

    def render(self) -> Group:
        total = "?" if self.total is None else self.total
        elapsed = duration(self.clock() - self.since)
        head = Text(f"study {self.name}: {self.done}/{total} trials done  {elapsed} elapsed  {self.eta()}  {self.best}")
        rows = Table.grid(padding=(0, 2))
        for _ in range(5):
            rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True, overflow="ellipsis")
        for worker, r in sorted(dict(self.running).items()):  # a copy: workers' lines update it meanwhile
            steps = f"step {r.step:>5}/{r.max_steps if r.max_steps else '?':<5}"
            bar = ProgressBar(total=float(r.max_steps or 1), completed=float(r.step), width=BAR_WIDTH)
            metric = f"{self.metric}={format_value(r.value)}" if r.value is not None else f"{self.metric}=-"
            rows.add_row(worker, f"trial {r.trial:>3}", bar, steps, metric, r.params)
        if not self.running:
            rows.add_row("", "waiting for a trial")
        return Group(head, rows)
