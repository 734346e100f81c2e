"""Progress: the plain lines in logs and pipes, the live view on a terminal, and the events a worker
sends to the view of `run --workers`."""

from __future__ import annotations

import io
import json

import optuna
import pytest
from rich.console import Console

from hpsearch.orchestration import pool
from hpsearch.orchestration.live import LiveView, duration
from hpsearch.orchestration.progress import EVENT_PREFIX, EVENTS_ENV, Progress

LR = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)


def study_with_best(value: float = 0.8) -> optuna.Study:
    study = optuna.create_study(study_name="tiny", direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(params={"learning_rate": 0.01}, distributions={"learning_rate": LR}, value=value)
    )
    return study


def finished_trial(study: optuna.Study, value: float) -> optuna.trial.FrozenTrial:
    study.add_trial(
        optuna.trial.create_trial(params={"learning_rate": 0.02}, distributions={"learning_rate": LR}, value=value)
    )
    return study.trials[-1]


def counted(study: optuna.Study) -> int:
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def shown(view: LiveView) -> str:
    """The view as a terminal 140 columns wide would show it, without colours."""
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(view.render())
    return console.file.getvalue()


def live_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=140)


POINT = {"step": 30, "eval_accuracy": 0.75, "eval_loss": 0.5}


def test_without_a_terminal_the_lines_are_the_plain_ones_byte_for_byte():
    out = io.StringIO()
    progress = Progress("accuracy", stream=out)
    study = study_with_best()
    with progress.live(study, 4, counted):  # a StringIO is no terminal: no view
        assert progress.view is None
        progress.resume(study)
        progress.started(1, {"learning_rate": 0.02})
        progress.evaluated(1, POINT, 120)
        progress.finished(study, finished_trial(study, 0.9))
    assert out.getvalue().splitlines() == [
        "trial   1  start     learning_rate=0.02",
        "trial   1  step    30/120   accuracy=0.75  eval_loss=0.5  best 0.8 (trial 0)",
        "trial   1  COMPLETE  accuracy=0.9  0.0s  best 0.9 (trial 1)",
    ]


def test_quiet_draws_no_view_even_on_a_terminal(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: True, raising=False)
    progress = Progress("accuracy", quiet=True, stream=out)
    with progress.live(study_with_best(), 4, counted):
        assert progress.view is None
        progress.started(1, {"learning_rate": 0.02})
    assert out.getvalue() == ""


def test_a_dumb_terminal_keeps_the_plain_lines(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("TERM", "dumb")
    progress = Progress("accuracy", stream=out)
    with progress.live(study_with_best(), 4, counted):
        assert progress.view is None
        progress.evaluated(1, POINT, 120)
    assert out.getvalue().startswith("trial   1  step    30/120")


def test_on_a_terminal_the_view_shows_done_of_budget_the_running_step_and_the_best():
    console = live_console()
    progress = Progress("accuracy")
    study = study_with_best()
    with progress.live(study, 4, counted, console=console):
        progress.started(1, {"learning_rate": 0.02})
        progress.evaluated(1, POINT, 120)
        view = shown(progress.view)
        assert "study tiny: 1/4 trials done" in view
        assert "trial   1" in view and "step    30/120" in view and "accuracy=0.75" in view
        assert "learning_rate=0.02" in view
        assert "best 0.8 (trial 0)" in view
        progress.finished(study, finished_trial(study, 0.9))
        view = shown(progress.view)
        assert "2/4 trials done" in view and "best 0.9 (trial 1)" in view and "waiting for a trial" in view
    assert progress.view is None
    printed = console.file.getvalue()
    # start and end lines stay in the scrollback; the evaluation line is the view's, not a printed line
    assert "trial   1  start     learning_rate=0.02" in printed
    assert "trial   1  COMPLETE  accuracy=0.9" in printed
    assert "eval_loss=" not in printed


def test_a_worker_under_the_view_sends_events_and_the_parent_shows_them_per_worker(monkeypatch):
    monkeypatch.setenv(EVENTS_ENV, "events")
    child_out = io.StringIO()
    child = Progress("accuracy", stream=child_out)
    study = study_with_best()
    child.started(3, {"learning_rate": 0.02})
    child.evaluated(3, POINT, 120)
    lines = child_out.getvalue().splitlines()
    assert lines[0] == "trial   3  start     learning_rate=0.02"  # the line people read, as ever
    assert all(line.startswith(EVENT_PREFIX) for line in lines[1:]) and len(lines) == 3
    assert json.loads(lines[2][len(EVENT_PREFIX) :]) == {
        "event": "evaluated",
        "trial": 3,
        "step": 30,
        "max_steps": 120,
        "value": 0.75,
    }

    monkeypatch.delenv(EVENTS_ENV)
    console = live_console()
    parent = Progress("accuracy")
    with parent.live(study, 10, counted, console=console):
        for line in [*lines, "a warning from a library"]:
            parent.relay("w1", line)
        view = shown(parent.view)
        assert "w1" in view and "trial   3" in view and "step    30/120" in view and "accuracy=0.75" in view
        assert "1/10 trials done" in view
        parent.relay("w1", EVENT_PREFIX + json.dumps({"event": "finished", "trial": 3}))
        finished_trial(study, 0.95)
        parent.relay("w0", EVENT_PREFIX + json.dumps({"event": "finished", "trial": 4}))
        view = shown(parent.view)
        assert "2/10 trials done" in view and "best 0.95 (trial 1)" in view and "trial   3" not in view
        parent.relay("w0", EVENT_PREFIX + json.dumps({"event": "started", "trial": 5, "params": {}}))
        parent.stopped("w0")  # its process died: its trial leaves the view
        assert "trial   5" not in shown(parent.view)
    printed = console.file.getvalue()
    assert "w1 trial   3  start     learning_rate=0.02" in printed and "w1 a warning from a library" in printed
    assert EVENT_PREFIX not in printed


def test_without_a_view_relayed_lines_are_prefixed_as_they_came():
    out = io.StringIO()
    progress = Progress("accuracy", stream=out)
    progress.relay("w0", "trial   0  step    10/40    accuracy=0.5  eval_loss=1.2  best -")
    assert out.getvalue() == "w0 trial   0  step    10/40    accuracy=0.5  eval_loss=1.2  best -\n"


def test_a_blank_line_from_a_worker_is_not_relayed_as_a_bare_label():
    """A stopped worker prints a blank line before `interrupted: ...`: the parent shows no `w0 ` line for it."""
    out = io.StringIO()
    progress = Progress("accuracy", stream=out)
    for line in ["", "   ", "interrupted: run the same command again to resume"]:
        progress.relay("w0", line)
    assert out.getvalue() == "w0 interrupted: run the same command again to resume\n"


@pytest.mark.parametrize("events", [False, True])
def test_workers_are_told_to_send_events_only_when_the_parent_draws_the_view(monkeypatch, events):
    monkeypatch.setenv(EVENTS_ENV, "events")  # never inherited: only the parent's view decides
    env = pool._env(slot=0, n=2, gpus=[], storage_url="sqlite:///x.db", events=events)
    assert (env.get(EVENTS_ENV) == "events") is events


def test_eta_counts_finished_trials_and_the_running_ones_fraction():
    now = [100.0]
    view = LiveView("tiny", "accuracy", total=4, done=1, clock=lambda: now[0])
    assert view.eta() == "ETA -"  # nothing done this run yet
    view.started("", 2, {})
    view.evaluated("", 2, 50, 100, 0.5)
    now[0] = 110.0  # half a trial in 10 s: 2.5 trials left take 50 s
    assert view.eta() == "ETA 50s"
    view.finished("", 2, "best -")
    now[0] = 120.0  # one trial in 20 s: two left take 40 s
    assert view.eta() == "ETA 40s"
    assert LiveView("tiny", "accuracy", total=None, done=0).eta() == "ETA -"
    assert LiveView("tiny", "accuracy", total=2, done=2).eta() == "ETA 0s"


def test_durations_read_short():
    assert [duration(s) for s in (4.4, 65, 7260)] == ["4s", "1m05s", "2h01m"]
