"""hpsearch.report: the data a report shows (asserted directly), its HTML, and its rendering in Chromium."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from hpsearch.results.report import collect as report
from hpsearch.results.report import figures, labels, optuna_figures, sections, types
from hpsearch.results.report import html as report_html

optuna.logging.set_verbosity(optuna.logging.WARNING)

T0 = dt.datetime(2026, 11, 1, 12, 0, 0)
SPACE = {
    "learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
    "per_device_train_batch_size": CategoricalDistribution([8, 16, 32]),
    "optim": CategoricalDistribution(["adamw_torch", "sgd"]),
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def new_study(tmp_path: Path, name: str = "s", direction: str = "maximize", metric: str | None = "accuracy", **spec):
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{tmp_path / 'report.db'}", direction=direction)
    if metric is not None:
        study.set_user_attr("spec", {"objective": {"metric": metric}, **spec})
    return study


def add(
    study: optuna.Study,
    values: list[float],
    *,
    state: TrialState = TrialState.COMPLETE,
    learning_rate: float | None = 1e-4,
    batch: int | None = 16,
    optim: str | None = "adamw_torch",
    max_steps: int = 100,
    start_s: float = 0.0,
    seconds: float = 10.0,
    error: str | None = None,
    with_intermediate: bool = True,
) -> None:
    """One trial as hpsearch records it: VALUES are its evaluations, every max_steps // 10 steps."""
    params = {"learning_rate": learning_rate, "per_device_train_batch_size": batch, "optim": optim}
    params = {k: v for k, v in params.items() if v is not None}
    every = max_steps // 10
    steps = [every * (i + 1) for i in range(len(values))]
    curve = [
        {"step": s, "epoch": s / max_steps, "train_loss": 1 - v, "eval_loss": 1 - v, "eval_accuracy": v}
        for s, v in zip(steps, values, strict=True)
    ]
    trained = steps[-1] if steps else 0
    attrs = {
        "curve": curve,
        "steps_trained": trained,
        "max_steps": max_steps,
        "train_samples_per_second": 100.0 * (batch or 1),
        "train_seconds": seconds,
        "wall_time_s": seconds + 1.0,
    }
    if error:
        attrs = {"error": error, "wall_time_s": seconds}
    trial = optuna.trial.create_trial(
        state=state,
        value=values[-1] if state == TrialState.COMPLETE else None,
        params=params,
        distributions={k: SPACE[k] for k in params},
        intermediate_values=dict(zip(steps, values, strict=True)) if with_intermediate else None,
        user_attrs=attrs,
    )
    trial.datetime_start = T0 + dt.timedelta(seconds=start_s)
    trial.datetime_complete = T0 + dt.timedelta(seconds=start_s + seconds + 1.0)
    study.add_trial(trial)


@pytest.fixture
def mixed(tmp_path):
    """3 complete, 2 pruned, 1 failed trial; trial 2 is the best."""
    study = new_study(tmp_path, name="mixed")
    add(study, [0.3, 0.5, 0.6], learning_rate=1e-5, batch=8, optim="sgd", start_s=0, seconds=30)
    add(study, [0.4, 0.7, 0.8], learning_rate=1e-4, batch=16, start_s=10, seconds=40)
    add(study, [0.5, 0.8, 0.9], learning_rate=3e-4, batch=32, start_s=20, seconds=50, max_steps=200)
    add(study, [0.2, 0.25], state=TrialState.PRUNED, learning_rate=2e-5, batch=8, optim="sgd", start_s=30, seconds=8)
    add(study, [0.1], state=TrialState.PRUNED, learning_rate=5e-4, batch=32, max_steps=50, start_s=40, seconds=2)
    add(study, [], state=TrialState.FAIL, learning_rate=1e-3, batch=32, error="OutOfMemoryError: <b>oom</b>", seconds=3)
    return study


def test_a_skipped_trial_is_counted_as_skipped_not_as_pruned(mixed):
    skipped = optuna.trial.create_trial(
        state=TrialState.PRUNED, user_attrs={"skipped": "budget of 6 trials already started"}
    )
    mixed.add_trial(skipped)
    data = report.collect(mixed)
    assert data.summary.states == {"COMPLETE": 3, "PRUNED": 2, "FAIL": 1, "SKIPPED": 1}
    assert data.summary.saved == (100 - 20) + (50 - 5)  # it saved nothing: it never started


def test_a_searched_model_gets_its_objective_and_throughput_per_model(tmp_path, mixed):
    assert "model" not in report.collect(mixed).sections  # not searched: no section, no note
    study = new_study(tmp_path, name="models")
    models = ["org/small-model", "/models/a-much-larger-model-folder-name"]
    for i, (model, value, speed) in enumerate(
        [(models[0], 0.6, 900.0), (models[1], 0.8, 300.0), (models[1], 0.7, 310.0)]
    ):
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                params={"model": model, "learning_rate": 1e-4 * (i + 1)},
                distributions={"model": CategoricalDistribution(models), "learning_rate": SPACE["learning_rate"]},
                user_attrs={"train_samples_per_second": speed},
            )
        )
    data = report.collect(study)
    sections = data.sections
    assert sections.index("model") == sections.index("optimizer") + 1 and "model" in data.figures
    assert data.model.choices == tuple(sorted(models))
    by_model = dict(zip(data.model.choices, zip(data.model.values, data.model.throughput, strict=True), strict=True))
    assert by_model[models[1]] == ((0.8, 0.7), (300.0, 310.0)) and by_model[models[0]] == ((0.6,), (900.0,))
    page = report_html.render(data)
    assert 'id="figure-model"' in page
    assert '"\\u2026arger-model-folder-name"' in page  # the long folder name keeps its end on the axis


def test_long_choices_that_end_alike_keep_their_full_names_on_the_axis():
    alike = ["/runs/run-a/checkpoints/checkpoint-best", "/runs/run-b/checkpoints/checkpoint-best"]
    assert labels.ticks(alike) == alike
    apart = ["/models/a-much-larger-model-folder-name", "org/small"]
    assert labels.ticks(apart) == ["…arger-model-folder-name", "org/small"]


def test_summary_best_states_compute_and_pruning_savings(mixed):
    data = report.collect(mixed)
    s = data.summary
    assert s.metric == "accuracy" and s.direction == "maximize"
    assert s.best == types.Best(
        2, 0.9, {"learning_rate": 3e-4, "per_device_train_batch_size": 32, "optim": "adamw_torch"}
    )
    assert s.states == {"COMPLETE": 3, "PRUNED": 2, "FAIL": 1}
    # pruned: trial 3 trained 20 of 100 steps, trial 4 trained 5 of 50
    assert s.saved == (100 - 20) + (50 - 5)
    assert s.trained == 30 + 30 + 60 + 20 + 5 + 0
    assert s.seconds_saved == pytest.approx(80 * 8 / 20 + 45 * 2 / 5)
    assert s.compute_seconds == pytest.approx(30 + 40 + 50 + 8 + 2 + 3)  # the failed trial has wall_time_s only
    assert s.wall_time_s == pytest.approx(20 + 50 + 1)  # trial 0 starts at 0, trial 2 (start 20, 51 s) ends last
    assert s.searched == ("learning_rate", "optim", "per_device_train_batch_size")
    rows = {r.number: r for r in data.trials}
    assert rows[3].pruned_at == 20 and rows[3].reached == 0.25 and rows[3].value is None
    assert rows[5].error.startswith("OutOfMemoryError") and rows[5].reached is None
    assert data.figures == types.FIGURES[:-2] + ("parallel",)  # everything but importance (too few trials)


def test_history_best_so_far_follows_the_direction(tmp_path):
    up = new_study(tmp_path, name="up")
    down = new_study(tmp_path, name="down", direction="minimize", metric="loss")
    for value in (0.5, 0.7, 0.6, 0.9):
        add(up, [value])
        add(down, [value])
    high = report.collect(up)
    assert high.history == types.History((0, 1, 2, 3), (0.5, 0.7, 0.6, 0.9))
    low = report.collect(down)
    assert best_so_far(high) == ((0, 1, 2, 3), (0.5, 0.7, 0.7, 0.9))  # drawn by Optuna, from the report's study
    assert best_so_far(low) == ((0, 1, 2, 3), (0.5, 0.5, 0.5, 0.5))
    assert low.summary.best.number == 0 and low.summary.metric == "loss"


def best_so_far(data: report.ReportData) -> tuple[tuple, tuple]:
    """The best-so-far line of the history figure: its trial numbers and values."""
    (line,) = [t for t in optuna_figures.get_history_plot(data).data if t.mode == "lines"]
    return tuple(line.x), tuple(line.y)


def test_groups_heatmap_and_what_won(mixed):
    data = report.collect(mixed)
    assert data.batch_size.choices == (8, 16, 32)
    assert data.batch_size.values == ((0.6,), (0.8,), (0.9,))
    assert data.batch_size.throughput == ((800.0, 800.0), (1600.0,), (3200.0, 3200.0))  # pruned trials ran too
    assert data.optimizer.choices == ("adamw_torch", "sgd")
    assert data.optimizer.values == ((0.8, 0.9), (0.6,))
    h = data.heatmap
    assert h.batch_sizes == (8, 16, 32) and len(h.lr_edges) == 4  # 3 distinct learning rates -> 3 bins
    assert h.lr_edges[0] == pytest.approx(1e-5) and h.lr_edges[-1] == pytest.approx(3e-4)
    # log-spaced edges 1e-5, 3.1e-5, 9.7e-5, 3e-4: 1e-4 falls in the last bin, with 3e-4
    assert h.counts == ((1, 0, 0), (0, 0, 1), (0, 0, 1))
    assert h.best[2][2] == 0.9 and h.best[0][1] is None
    points = data.learning_rate
    assert points.numbers == (0, 1, 2, 3, 4)  # not the failed trial
    assert points.pruned == (False, False, False, True, True) and points.values[3:] == (0.25, 0.1)
    won = {w.param: w for w in data.winners}
    assert won["optim"].n_top == 3  # a tenth of 3 completed trials, but at least 3
    assert won["optim"].best == "adamw_torch" and won["optim"].top_counts == {"adamw_torch": 2, "sgd": 1}
    assert won["learning_rate"].top_range == (1e-5, 3e-4)
    assert won["per_device_train_batch_size"].top_counts == {32: 1, 16: 1, 8: 1}


def test_unsearched_params_are_left_out_with_a_note(tmp_path):
    study = new_study(tmp_path, train={"optim": "adamw_torch"})
    for i, lr in enumerate((1e-5, 1e-4, 3e-4)):
        add(study, [0.5 + i / 10], learning_rate=lr, batch=None, optim=None)
    data = report.collect(study)
    assert data.summary.searched == ("learning_rate",)
    assert data.figures == ("history", "learning_rate", "curves", "overfitting", "parallel")
    assert data.notes["optimizer"] == "optim was fixed at adamw_torch in this study, so there is no figure."
    assert "per_device_train_batch_size was not searched" in data.notes["batch_size"]
    assert "per_device_train_batch_size was not searched" in data.notes["heatmap"]
    assert "searched 1" in data.notes["importance"]
    assert data.learning_rate.optims == (None, None, None)
    assert "optim was fixed" in report_html.render(data)


def test_learning_curves_are_capped_best_first_then_a_seeded_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "MAX_CURVES", 8)
    monkeypatch.setattr(sections, "BEST_CURVES", 3)
    study = new_study(tmp_path)
    for i in range(14):
        add(study, [0.1, 0.2 + i / 100])  # trial 13 is the best
    for _ in range(4):
        add(study, [0.1, 0.05, 0.01], state=TrialState.PRUNED)
    c = report.collect(study).curves
    assert c.total == 18 and len(c.curves) == 8 and c.n_best == 3 and c.seed == sections.CURVE_SEED
    numbers = [x.number for x in c.curves]
    assert {11, 12, 13} <= set(numbers) and numbers == sorted(numbers)
    assert [x.number for x in c.curves if x.is_best] == [13]
    assert numbers == [x.number for x in report.collect(study).curves.curves]  # the sample is seeded
    pruned = [x for x in c.curves if x.state == "PRUNED"]
    assert all(x.points == (10, 20, 30) for x in pruned)  # a pruned curve ends where it was pruned


def test_every_curve_is_drawn_below_the_cap_and_the_curve_attribute_stands_in(tmp_path):
    study = new_study(tmp_path)
    add(study, [0.3, 0.6])
    add(study, [0.2, 0.4, 0.5], with_intermediate=False)  # only the `curve` user attribute
    c = report.collect(study).curves
    assert c.seed is None and c.n_best == 0 and c.total == 2
    assert [(x.points, x.values) for x in c.curves] == [((10, 20), (0.3, 0.6)), ((10, 20, 30), (0.2, 0.4, 0.5))]


def test_importance_says_why_it_is_missing_and_is_computed_with_enough_trials(mixed, tmp_path):
    data = report.collect(mixed)
    assert data.importance is None
    assert data.notes["importance"].startswith("Too few completed trials for parameter importance: 3")
    study = new_study(tmp_path, name="enough")
    for i in range(12):
        lr = 10 ** (-5 + i / 6)
        add(study, [0.9 - abs(math.log10(lr) + 4) / 3], learning_rate=lr, batch=(8, 16, 32)[i % 3])
    imp = report.collect(study).importance
    assert set(imp.params) == {"learning_rate", "per_device_train_batch_size", "optim"}
    assert sum(imp.importances) == pytest.approx(1.0)


def test_parallel_coordinates_are_optunas_one_line_per_completed_trial(mixed):
    data = report.collect(mixed)
    assert data.parallel == types.Lines((0, 1, 2), total=3, n_best=0, seed=None)
    fig = optuna_figures.get_parallel_plot(data)
    assert list(fig.layout.xaxis.ticktext) == ["accuracy", "learning_rate", "optim", "per_device_train_..."]
    lines = [dict(map(tuple, t.customdata)) for t in fig.data if t.mode == "lines"]  # axis -> the value shown
    assert [line["accuracy"] for line in lines] == ["0.6", "0.8", "0.9"]
    assert [line["learning_rate"] for line in lines] == ["1e-05", "0.0001", "0.0003"]  # a log axis
    assert [line["optim"] for line in lines] == ["sgd", "adamw_torch", "adamw_torch"]
    assert [line["per_device_train_..."] for line in lines] == ["8", "16", "32"]
    # a log param's ticks are its decades within the range, as values
    ticks = [a.text for a in fig.layout.annotations if a.x == 1]
    assert ticks == ["1e-05", "0.0001", "0.0003"]


def test_parallel_coordinates_beyond_the_cap_draw_the_best_and_a_seeded_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "MAX_LINES", 6)
    monkeypatch.setattr(sections, "BEST_LINES", 2)
    study = new_study(tmp_path)
    for i in range(10):
        add(study, [i / 10], learning_rate=1e-5 * (i + 1))  # trial 9 is the best
    lines = report.collect(study).parallel
    assert lines.total == 10 and len(lines.numbers) == 6 and lines.n_best == 2 and lines.seed == sections.CURVE_SEED
    assert {8, 9} <= set(lines.numbers) and list(lines.numbers) == sorted(lines.numbers)
    assert lines == report.collect(study).parallel  # the sample is seeded
    fig = optuna_figures.get_parallel_plot(report.collect(study))
    values = sorted(float(dict(map(tuple, t.customdata))["accuracy"]) for t in fig.data if t.mode == "lines")
    assert values == [n / 10 for n in lines.numbers]
    assert fig.layout.title.text == "6 of 10 completed trials: the best 2, and 4 at random (seed 0)"


def test_optunas_figures_read_an_in_memory_study_of_the_stored_numbers_without_attributes(mixed, monkeypatch):
    for i in range(6):  # enough completed trials for importance, which draws from a study of its own
        add(mixed, [0.2, 0.3 + i / 20], learning_rate=10 ** (-5 + i / 3), batch=(8, 16, 32)[i % 3], optim="sgd")
    monkeypatch.setattr(sections, "MAX_LINES", 4)  # and so do sampled parallel coordinates
    data = report.collect(mixed)
    shown = data.study.get_trials(deepcopy=False)
    assert [(t.number, t.state) for t in shown] == [(t.number, t.state) for t in mixed.trials]
    assert all(t.user_attrs == {} and t.intermediate_values == {} for t in shown)  # nothing Optuna would copy
    assert [(t.params, t.values) for t in shown] == [(t.params, t.values) for t in mixed.trials]
    assert data.study.metric_names == ["accuracy"]
    assert data.importance is not None and data.parallel.seed is not None
    for name, draw in optuna_figures.DRAW.items():
        if getattr(data, name) is not None:
            draw(data)
    assert [t.number for t in data.study.trials] == [t.number for t in mixed.trials]  # not renumbered by them


def test_optunas_figures_show_text_choices_escaped_and_by_their_end(tmp_path):
    study = new_study(tmp_path)
    names = ["<b>bold</b>", "/models/" + "x" * 30 + "/checkpoint-7"]
    space = {"model": CategoricalDistribution(names), "learning_rate": SPACE["learning_rate"]}
    for i, name in enumerate(names * 3):
        params = {"model": name, "learning_rate": 1e-4 * (i + 1)}
        study.add_trial(optuna.trial.create_trial(value=0.5 + i / 10, params=params, distributions=space))
    data = report.collect(study)
    assert {t.params["model"] for t in data.study.trials} == {"&lt;b&gt;bold&lt;/b&gt;", "…xxxxxxxxxx/checkpoint-7"}
    assert data.trials[0].params["model"] == names[0]  # the report's own data keeps the names as written


def test_the_pareto_figure_is_optunas_with_the_cost_across_and_the_front_in_red():
    study = optuna.create_study(directions=["maximize", "minimize"])
    space = {"learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}
    for i, values in enumerate([(0.5, 10.0), (0.7, 20.0), (0.6, 30.0), (0.9, 40.0)]):
        trial = optuna.trial.create_trial(
            values=list(values), params={"learning_rate": 1e-4 * (i + 1)}, distributions=space
        )
        study.add_trial(trial)
    study.set_user_attr("spec", {"objective": {"metric": "accuracy", "cost": "train_seconds"}})
    data = report.collect(study)
    assert data.pareto.front == (3, 1, 0)
    dominated, front = optuna_figures.get_pareto_plot(data).data[:2]
    front_points = sorted(zip(front.x, front.y, strict=True))  # (cost, quality): the cost across, quality up
    assert front_points == [(10.0, 0.5), (20.0, 0.7), (40.0, 0.9)]
    assert list(zip(dominated.x, dominated.y, strict=True)) == [(30.0, 0.6)]
    assert front.marker.color == figures.BEST and dominated.marker.color == figures.GREY


def test_a_large_history_is_drawn_with_webgl(tmp_path, monkeypatch):
    study = new_study(tmp_path)
    for value in (0.5, 0.7, 0.6, 0.9):
        add(study, [value])
    data = report.collect(study)
    assert {t.type for t in optuna_figures.get_history_plot(data).data} == {"scatter"}
    monkeypatch.setattr(optuna_figures, "GL_POINTS", 3)
    fig = optuna_figures.get_history_plot(data)
    assert [t.type for t in fig.data if t.x is not None and len(t.x) > 3] == ["scattergl", "scattergl"]
    assert best_so_far(data) == ((0, 1, 2, 3), (0.5, 0.7, 0.7, 0.9))  # the same data, drawn faster


@pytest.mark.parametrize(
    "kind, states, figures, note",
    [
        ("empty", {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}, (), "no trials yet"),
        ("one", {"COMPLETE": 1, "PRUNED": 0, "FAIL": 0}, types.FIGURES[:-2] + ("parallel",), None),
        ("all pruned", {"COMPLETE": 0, "PRUNED": 2, "FAIL": 0}, ("learning_rate", "curves"), "No trial completed"),
        ("all failed", {"COMPLETE": 0, "PRUNED": 0, "FAIL": 2}, (), "No trial completed (2 fail)"),
    ],
)
def test_edge_cases_still_make_a_report_that_says_so(tmp_path, kind, states, figures, note):
    study = new_study(tmp_path, metric=None)
    if kind == "one":
        add(study, [0.5])
    for _ in range(2 if kind in ("all pruned", "all failed") else 0):
        if kind == "all pruned":
            add(study, [0.2, 0.3], state=TrialState.PRUNED)
        else:
            add(study, [], state=TrialState.FAIL, error="ValueError: bad")
    data = report.collect(study)
    assert data.summary.states == states and data.summary.metric == "objective"
    assert data.figures == figures
    assert (data.summary.best is None) == (kind != "one")
    if note:
        assert note in data.notes["summary"]
    else:
        assert "summary" not in data.notes
    page = report_html.render(data)
    assert page.count('class="plotly-graph-div"') == len(figures)
    assert all(f'id="figure-{name}"' in page for name in figures)


def test_a_live_study_shows_its_running_trial(mixed):
    running = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params={"learning_rate": 1e-4, "optim": "sgd"},
        distributions={k: SPACE[k] for k in ("learning_rate", "optim")},
        intermediate_values={10: 0.3, 20: 0.4},
    )
    mixed.add_trial(running)
    data = report.collect(mixed)
    assert data.summary.states["RUNNING"] == 1
    assert data.trials[-1].state == "RUNNING" and data.trials[-1].reached == 0.4 and data.trials[-1].value is None
    assert 6 not in data.learning_rate.numbers  # only finished trials are points
    assert [c.points for c in data.curves.curves if c.state == "RUNNING"] == [(10, 20)]
    assert "running" in report_html.render(data)


def test_html_is_self_contained_escaped_and_written(tmp_path):
    study = new_study(tmp_path, name="<script>alert(1)</script>")
    space = {**SPACE, "optim": CategoricalDistribution(["adamw_torch", "<b>evil</b>"])}
    trial = optuna.trial.create_trial(
        value=0.5,
        params={"learning_rate": 1e-4, "optim": "<b>evil</b>"},
        distributions={k: space[k] for k in ("learning_rate", "optim")},
        user_attrs={"error": "<img src=x onerror=alert(2)>"},
    )
    study.add_trial(trial)
    add(study, [], state=TrialState.FAIL, optim=None, error="<img src=x onerror=alert(2)>")
    out = report_html.write(study, tmp_path / "dashboards" / "s.html")
    page = out.read_text()
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>evil" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    import plotly.offline

    plotly_js = plotly.offline.get_plotlyjs()
    assert page.count(plotly_js) == 1  # plotly.js inline, once
    ours = page.replace(plotly_js, "")
    assert "<script src" not in ours and "http" not in ours  # nothing to fetch: the file opens offline


def test_a_report_out_that_cannot_be_written_is_refused_before_rendering(tmp_path):
    from hpsearch.errors import SpecError

    study = new_study(tmp_path, name="s")
    for out, problem in ((tmp_path, "is a folder, not a file"), (Path("/proc/nope/r.html"), "in folder /proc")):
        with pytest.raises(SpecError, match=f"hpsearch report: --out: {out}: .*{problem}"):
            report_html.write(study, out)
    assert not Path("/proc/nope").exists()


# The report's figures that plotly has drawn (their SVG exists), in page order.
DRAWN = "() => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.querySelector('svg.main-svg'))"


@contextlib.contextmanager
def report_in_chromium(path: Path, figures: int):
    """Open the report at PATH in headless Chromium and wait until its FIGURES figures are drawn;
    yields (page, errors: the page's JavaScript errors and console errors)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package: pip install playwright (it ships its driver)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser test needs Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.goto(path.as_uri())
            page.wait_for_function(f"n => ({DRAWN})().length === n", arg=figures, timeout=30_000)
            yield page, errors
        finally:
            browser.close()


@pytest.mark.browser
def test_report_renders_in_chromium_without_errors(tmp_path, mixed):
    """Open the report in headless Chromium: every figure drawn (plotly's SVG exists), no JavaScript error."""
    for i in range(6):  # enough completed trials for importance, so every figure is drawn
        add(mixed, [0.2, 0.3 + i / 20], learning_rate=10 ** (-5 + i / 3), batch=(8, 16, 32)[i % 3], optim="sgd")
    data = report.collect(mixed)
    assert data.figures == types.FIGURES
    path = tmp_path / "report.html"
    path.write_text(report_html.render(data), encoding="utf-8")
    shot = tmp_path / "report.png"
    with report_in_chromium(path, len(data.figures)) as (page, errors):
        ids = page.evaluate(f"() => ({DRAWN})().map(e => e.id)")
        # each figure fits its box (one drawn before the layout settled would be clipped)
        fit = "e => [e.id, +e.querySelector('svg.main-svg').getAttribute('width') <= e.clientWidth + 1]"
        fits = page.evaluate(f"() => ({DRAWN})().map({fit})")
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert errors == []
    assert ids == [f"figure-{name}" for name in data.figures]
    assert fits == [[i, True] for i in ids]
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_report_verb_on_a_real_sweep(make_study, tmp_path, capsys, monkeypatch):
    from hpsearch import cli

    path = make_study(budget={"n_trials": 2})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["report", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "wrote dashboards/tiny.html"
    page = (tmp_path / "dashboards" / "tiny.html").read_text()
    assert "<title>hpsearch report: tiny</title>" in page and "figure-learning_rate" in page
    assert cli.main(["report", str(path), "--set", "name=none"]) == 2


def add_with_losses(study: optuna.Study, value: float, train_loss, eval_loss, *, recorded: bool = True, **kw) -> None:
    """One trial whose last curve point has these losses; `recorded`: with the train_eval_gap attribute."""
    state = kw.pop("state", TrialState.COMPLETE)
    point = {"step": 10, "train_loss": train_loss, "eval_loss": eval_loss, "eval_accuracy": value}
    attrs = {"curve": [point], "steps_trained": 10, "max_steps": 10}
    if recorded:
        gap = None if train_loss is None or eval_loss is None else eval_loss - train_loss
        point["train_eval_gap"] = attrs["train_eval_gap"] = gap
    trial = optuna.trial.create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params={"learning_rate": kw.get("learning_rate", 1e-4)},
        distributions={"learning_rate": SPACE["learning_rate"]},
        intermediate_values={10: value},
        user_attrs=attrs,
    )
    study.add_trial(trial)


def test_the_train_eval_gap_is_a_column_and_a_figure_of_completed_trials(tmp_path):
    study = new_study(tmp_path)
    add_with_losses(study, 0.9, 0.25, 0.5)  # trial 0: the best, gap 0.25
    add_with_losses(study, 0.6, 0.75, 0.5)  # trial 1: eval loss below train loss, gap -0.25
    add_with_losses(study, 0.7, 0.5, 1.5, recorded=False)  # trial 2: recorded before the attribute, gap from its curve
    add_with_losses(study, 0.8, None, 0.5)  # trial 3: no train loss, no gap
    add_with_losses(study, 0.3, 0.25, 1.0, state=TrialState.PRUNED)  # trial 4: a gap, but not completed
    data = report.collect(study)
    assert [r.train_eval_gap for r in data.trials] == [0.25, -0.25, 1.0, None, 0.75]
    assert data.overfitting == types.Gaps(numbers=(0, 1, 2), gaps=(0.25, -0.25, 1.0), values=(0.9, 0.6, 0.7))
    assert "overfitting" in data.figures and "overfitting" not in data.notes
    page = report_html.render(data)
    assert 'id="figure-overfitting"' in page
    assert "Overfitting: train/eval loss gap against the objective" in page
    assert "<th>train/eval gap</th>" in page
    table = page[page.index("<table class=trials>") :]
    rows = table.split("<tr")[2:]  # after the header row
    assert rows[1].startswith(">") and "<td>1</td><td>COMPLETE</td><td>0.6</td><td>-0.25</td>" in rows[1]
    assert "<td>3</td><td>COMPLETE</td><td>0.8</td><td>-</td>" in rows[3]


def test_no_gap_figure_without_both_losses_and_a_note_says_so(tmp_path):
    study = new_study(tmp_path)
    add_with_losses(study, 0.9, None, 0.5)
    add_with_losses(study, 0.5, 0.25, None, recorded=False)
    add_with_losses(study, 0.3, 0.25, 1.0, state=TrialState.PRUNED)  # has both, but did not complete
    data = report.collect(study)
    assert data.overfitting is None and "overfitting" not in data.figures
    note = "No completed trial has both a train and an eval loss at its end."
    assert data.notes["overfitting"] == note
    page = report_html.render(data)
    assert note in page and 'id="figure-overfitting"' not in page


@pytest.mark.slow
def test_a_real_sweep_records_the_gap_the_report_shows(make_study):
    from hpsearch import cli

    path = make_study(budget={"n_trials": 2})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}")
    recorded = {}
    for t in study.trials:
        last = t.user_attrs["curve"][-1]
        assert t.user_attrs["train_eval_gap"] == last["train_eval_gap"] == last["eval_loss"] - last["train_loss"]
        assert "early_stopped_at_step" not in t.user_attrs  # off by default
        recorded[t.number] = t.user_attrs["train_eval_gap"]
    data = report.collect(study)
    assert {r.number: r.train_eval_gap for r in data.trials} == recorded
    assert dict(zip(data.overfitting.numbers, data.overfitting.gaps, strict=True)) == recorded
    assert data.overfitting.values == tuple(t.value for t in study.trials)


def _on_samples(study, number_of_steps, batch, values, *, state=TrialState.COMPLETE, budget=600):
    """A trial as hpsearch records it since schema version 3: evaluations every 150 training samples,
    intermediate values keyed by samples, its budget in samples recorded."""
    points = [150 * (i + 1) for i in range(len(values))]
    steps = [min(-(-at // batch), number_of_steps) for at in points]
    curve = [
        {"step": s, "samples": at, "eval_accuracy": v, "eval_loss": 1 - v, "train_loss": 1 - v}
        for s, at, v in zip(steps, points, values, strict=True)
    ]
    attrs = {
        "curve": curve,
        "steps_trained": steps[-1],
        "max_steps": number_of_steps,
        "budget_samples": budget,
        "train_seconds": 10.0,
        "training_arguments": {"per_device_train_batch_size": batch},
    }
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=values[-1] if state == TrialState.COMPLETE else None,
            params={"per_device_train_batch_size": batch},
            distributions={"per_device_train_batch_size": SPACE["per_device_train_batch_size"]},
            intermediate_values=dict(zip(points, values, strict=True)),
            user_attrs=attrs,
        )
    )


def test_a_study_on_the_samples_axis_counts_pruning_and_draws_curves_in_samples(tmp_path):
    """Batch 8 and 32 over the same 600 samples: 75 and 19 steps. In steps the pruned trials would save
    65 of 188 steps (35 %); in samples, what status and simulate count, 750 of 2,400 (31 %)."""
    study = new_study(tmp_path, schema_version=3)
    _on_samples(study, 75, 8, [0.3, 0.5, 0.6, 0.7])
    _on_samples(study, 19, 32, [0.4, 0.6, 0.7, 0.8])
    _on_samples(study, 75, 8, [0.1], state=TrialState.PRUNED)
    _on_samples(study, 19, 32, [0.2, 0.3], state=TrialState.PRUNED)
    data = report.collect(study)
    s = data.summary
    assert (s.axis, s.trained, s.saved) == ("samples", 600 + 600 + 150 + 300, 450 + 300)
    assert {r.number: r.pruned_at for r in data.trials} == {0: None, 1: None, 2: 150, 3: 300}
    assert [c.points for c in data.curves.curves] == [(150, 300, 450, 600)] * 2 + [(150,), (150, 300)]
    assert figures.get_curves_plot(data).layout.xaxis.title.text == "training samples seen"
    page = report_html.render(data)
    assert "750 samples not trained (31% of all trials&#x27; samples)" in page or (
        "750 samples not trained (31% of all trials' samples)" in page
    )
    assert "pruned at (samples)" in page and "pruned at step" not in page


def test_a_study_stored_before_the_samples_axis_is_counted_in_steps_and_says_so(mixed):
    data = report.collect(mixed)  # its stored spec has no schema_version: version 1
    assert data.summary.axis == "steps"
    assert figures.get_curves_plot(data).layout.xaxis.title.text == "step (stored before schema version 3)"
    page = report_html.render(data)
    assert "125 steps not trained" in page and "pruned at (step)" in page
    assert "Stored before schema version 3: its progress is counted in optimizer steps." in page
