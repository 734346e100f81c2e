"""The progress axis: evaluations scheduled on training samples seen, so trials of any batch size are
evaluated and reported at the same points; the stratified eval subsample of intermediate evaluations."""

from collections import Counter
from types import SimpleNamespace

import optuna
import pytest

from hpsearch import cli
from hpsearch.data.subsample import stratified_rows
from hpsearch.training.schedule import EvaluationSchedule, budget_samples, interval_samples


def _args(batch=16, accumulation=1, epochs=2.0, max_steps=-1, drop_last=False):
    return SimpleNamespace(
        per_device_train_batch_size=batch,
        train_batch_size=batch,
        dataloader_drop_last=drop_last,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=epochs,
        max_steps=max_steps,
        world_size=1,
    )


def _evaluated(batch: int, every: float, rows: int = 1000, epochs: int = 2) -> dict[int, int]:
    """Drive the schedule as Trainer does: step -> the point it reported, for each evaluated step."""
    args = _args(batch, epochs=epochs)
    per_epoch = -(-rows // batch)
    state = SimpleNamespace(global_step=0, max_steps=per_epoch * epochs)
    schedule = EvaluationSchedule(every, rows)
    schedule.on_train_begin(args, state, None)
    out = {}
    for step in range(1, state.max_steps + 1):
        state.global_step = step
        control = SimpleNamespace(should_evaluate=False, should_log=False)
        schedule.on_step_end(args, state, control)
        if control.should_evaluate:
            assert control.should_log  # the train loss is logged with every evaluation
            out[step] = schedule.point
    return out


def test_trials_of_different_batch_sizes_report_at_the_same_points():
    small, large = _evaluated(16, 128), _evaluated(32, 128)
    assert sorted(small.values()) == sorted(large.values()) == [*range(128, 2000, 128), 2000]
    # batch 16 reaches 128 samples at step 8, batch 32 at step 4; both evaluate their last step at 2,000
    assert small[8] == large[4] == 128 and small[126] == large[64] == 2000


def test_a_fraction_is_of_the_trials_budget_and_one_means_only_the_last_step():
    assert sorted(_evaluated(16, 0.25).values()) == [500, 1000, 1500, 2000]
    assert _evaluated(16, 1.0) == {126: 2000}
    assert interval_samples(0.1, 2000) == 200 and interval_samples(300, 2000) == 300
    assert budget_samples(_args(8, accumulation=2, max_steps=10), 10, 1000) == 160  # steps x effective batch
    assert budget_samples(_args(8, accumulation=2, max_steps=10), 10, 100) == 100 + 3 * 16  # 7 steps an epoch
    # A fraction of epochs: the same budget, so the same points, for every batch size
    assert {budget_samples(_args(b, epochs=0.5), -(-500 // b), 1000) for b in (8, 16, 24, 32)} == {500}
    assert (
        budget_samples(_args(16, max_steps=70, drop_last=True), 70, 100) == 70 // 6 * 96 + 70 % 6 * 16
    )  # 96 rows an epoch


def test_an_interval_below_a_batch_evaluates_once_a_step_at_the_latest_point():
    points = _evaluated(32, 10, rows=64, epochs=1)
    assert points == {1: 30, 2: 64}  # step 1 has seen 32 samples: points 10, 20, 30 passed, reported at 30


@pytest.mark.parametrize("batch", [1, 7, 16, 32, 100, 999])
@pytest.mark.parametrize("every", [0.0625, 0.25, 0.5, 0.9, 1.0, 37, 1999, 5000])
def test_the_last_intermediate_point_is_the_last_the_schedule_evaluates_before_the_end(batch, every):
    evaluated = _evaluated(batch, every)
    last_step = max(evaluated)
    before_end = [point for step, point in evaluated.items() if step < last_step]
    schedule = EvaluationSchedule(every, 1000)
    schedule.on_train_begin(_args(batch), SimpleNamespace(max_steps=last_step), None)
    assert schedule.last_intermediate == (max(before_end) if before_end else None)


def test_stratified_rows_keep_each_labels_share_and_at_least_one_row():
    labels = [0] * 300 + [1] * 90 + [2] * 10
    rows = stratified_rows(labels, len(labels), 40, seed=0)
    assert len(rows) == 40 and rows == sorted(rows)
    assert Counter(labels[i] for i in rows) == {0: 30, 1: 9, 2: 1}
    assert stratified_rows(labels, len(labels), 40, seed=0) == rows  # fixed
    rare = [0] * 99 + [1]
    assert Counter(rare[i] for i in stratified_rows(rare, 100, 10, seed=1)) == {0: 9, 1: 1}
    assert stratified_rows(None, 50, 10, seed=0) == stratified_rows(None, 50, 10, seed=0)
    assert stratified_rows(labels, len(labels), 1000, seed=0) == list(range(400))


def _load(path, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db")


@pytest.mark.slow
def test_a_real_sweep_keys_both_batch_sizes_alike_and_subsamples_intermediate_evaluations(make_study):
    path = make_study(
        search={"learning_rate": [1e-3], "per_device_train_batch_size": [8, 16]},
        sampler={"type": "grid"},
        evaluation={"every": 48, "subsample": 12},
        budget={},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = _load(path).trials
    assert [sorted(t.intermediate_values) for t in trials] == [[48, 96, 144, 192]] * 2  # 96 rows x 2 epochs
    for t in trials:
        curve = t.user_attrs["curve"]
        batch = t.params["per_device_train_batch_size"]
        assert [p["step"] * batch for p in curve] == [48, 96, 144, 192]
        assert [p["eval_rows"] for p in curve] == [12, 12, 12, 32]  # the final one on the whole split
        assert t.value == curve[-1]["eval_accuracy"]
