"""A trial's training does not depend on its evaluations: evaluated 8 times or only at its end, with
dropout on, it trains the same weights (an evaluation's DataLoader draws a seed from torch's generator,
which would otherwise shift every later dropout mask)."""

from __future__ import annotations

import optuna
import pytest

from hpsearch import cli


def final_point(make_study, every: float) -> tuple[float, dict]:
    path = make_study(
        name=f"every-{every}",
        search={"learning_rate": [5e-3], "per_device_train_batch_size": [8]},
        sampler={"type": "grid"},
        budget={"n_trials": 1},
        evaluation={"every": every},
        model__dropout=0.1,
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    storage = f"sqlite:///{path.parent / path.stem}.db"
    (trial,) = optuna.load_study(study_name=path.stem, storage=storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    return trial.value, trial.user_attrs


@pytest.mark.slow
def test_a_trial_trains_the_same_weights_however_often_it_is_evaluated(make_study):
    value_8, often = final_point(make_study, 0.125)
    value_1, once = final_point(make_study, 1.0)
    assert len(often["curve"]) == 8 and len(once["curve"]) == 1
    last, only = often["curve"][-1], once["curve"][0]
    assert last["samples"] == only["samples"]
    assert last["eval_loss"] == only["eval_loss"] and value_8 == value_1
    # Trainer's mean train loss is summed in pieces between logs (one per evaluation): rounding only
    assert often["train_loss"] == pytest.approx(once["train_loss"], rel=1e-6)
