"""The controller: the sweep's stop on SIGINT/SIGTERM (`controller._interrupt_once`): one signal, one interrupt,
never lost; a resume on data that changed since the study ran (`controller.check_data`) refused."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hpsearch.orchestration import controller
from hpsearch.spec import SpecError


class DiesWithASignal:
    """An object whose finalizer is running when the signal comes: Python drops an exception raised there."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside __del__
        for _ in range(1000):
            pass


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_sigterm_interrupts_once_and_a_second_one_is_ignored():
    with pytest.raises(KeyboardInterrupt), controller._interrupt_once():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            spin(2)
        finally:  # recording the trial: a second signal must not cut it short
            os.kill(os.getpid(), signal.SIGTERM)
            spin(0.2)
        pytest.fail("not interrupted")


def test_a_sigterm_that_came_during_a_finalizer_still_interrupts(capsys):
    """Seen under Slurm: scancel's one SIGTERM landed in a weakref callback, the interrupt was printed as
    "Exception ignored" and the worker trained on until Slurm killed it."""
    with pytest.raises(KeyboardInterrupt), controller._interrupt_once():
        DiesWithASignal()  # finalized at once
        spin(5)
        pytest.fail("the interrupt was lost")
    assert "Exception ignored" not in capsys.readouterr().err


@pytest.mark.parametrize("during", ["record", "tell"])
def test_a_signal_while_a_finished_trial_is_recorded_waits_until_it_is(make_study, monkeypatch, during):
    """A SIGTERM that lands while a trained trial's record (or Optuna's tell of it) is written stops the run
    after them: the trial is complete with its whole record, not failed, and no re-run is queued."""
    import optuna

    from hpsearch import cli
    from hpsearch.results.record import TrialAttr
    from hpsearch.training import trial as trial_module

    path = make_study(budget={"n_trials": 2})
    if during == "record":
        real_save = trial_module.save_record

        def signalling(trial, record, progress):
            os.kill(os.getpid(), signal.SIGTERM)
            spin(0.2)  # the handler has run by now
            real_save(trial, record, progress)

        monkeypatch.setattr(trial_module, "save_record", signalling)
    else:
        real_tell = optuna.storages.RDBStorage.set_trial_state_values

        def signalling(self, trial_id, state, values=None):
            if state.is_finished():
                os.kill(os.getpid(), signal.SIGTERM)
                spin(0.2)
            return real_tell(self, trial_id, state, values)

        monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", signalling)
    assert cli.main(["run", str(path), "--quiet"]) == 130
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"]  # the second trial never started, nothing re-queued
    assert trials[0].value is not None and TrialAttr.MEMORY_AFTER_MB in trials[0].user_attrs
    assert TrialAttr.INTERRUPTED not in trials[0].user_attrs


def test_resuming_on_changed_data_is_refused_naming_both_fingerprints(make_study, intents_data, tmp_path, capsys):
    from hpsearch import cli

    path = make_study(budget__n_trials=1, train__max_steps=2)
    assert cli.main(["run", str(path), "--quiet"]) == 0
    train = intents_data / "train.csv"
    train.write_text(train.read_text().replace(",track", ",new_intent", 3))
    stored = (tmp_path / "tiny.db").read_bytes()
    assert cli.main(["run", str(path), "--n-trials", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: data.path: {intents_data} changed since the stored study 'tiny' ran on it (the data had " in err
    assert "restore that data, or use a new study name" in err and err.count("\n") == 1
    assert (tmp_path / "tiny.db").read_bytes() == stored


def test_a_study_whose_trials_recorded_no_fingerprint_still_resumes():
    from types import SimpleNamespace

    import optuna

    spec = SimpleNamespace(source="s.yaml", name="old", data=SimpleNamespace(path="d"))
    prepared = SimpleNamespace(raw=SimpleNamespace(fingerprint="new"), labels=("a", "b"))
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0))
    controller.check_data(spec, study, prepared)  # nothing stored to compare
    study.set_user_attr("labels", ["a", "c"])
    with pytest.raises(SpecError, match="had labels a, c; it now has a, b"):
        controller.check_data(spec, study, prepared)
