"""Cost as a second objective (objective.cost): a real sweep through the CLI, then status, export,
report, warm start and resume on its two-objective study; the spec's and the reporter's rules."""

import contextlib
import io
import json

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hpsearch import cli
from hpsearch.orchestration import warm_start
from hpsearch.orchestration.progress import Progress
from hpsearch.results import pareto, trials_read
from hpsearch.results.report import collect as report
from hpsearch.results.report import html as report_html
from hpsearch.spec import SpecError, load_spec
from hpsearch.training.callbacks import OptunaReporter

# `swept` below is module-scoped (a real sweep): under `make test -n 2` the module stays on one worker.
pytestmark = pytest.mark.xdist_group("multiobjective")

COST = {"metric": "accuracy", "cost": "device_seconds"}


def load(path, name="tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db")


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_model):
    """A real 4-trial sweep with cost device_seconds: (study file, study, `run` output). Shared by the
    tests that only read it; they must not change the study."""
    from tests.conftest import base_study, write_intents

    folder = tmp_path_factory.mktemp("multiobjective")
    study = base_study(tiny_model, write_intents(folder / "intents"), objective=COST, budget__n_trials=4)
    study["train"] = {"max_steps": 4, "use_cpu": True}
    study["evaluation"] = {"every": 0.5}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("HPSEARCH_CACHE", str(folder / "cache"))
        assert cli.main(["run", str(path)]) == 0
    return path, load(path), out.getvalue()


@pytest.mark.slow
def test_a_sweep_with_a_cost_records_two_values_per_trial(swept):
    path, study, printed = swept
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert isinstance(study.sampler, optuna.samplers.BaseSampler) and len(study.trials) == 4
    for t in study.trials:
        assert t.state == TrialState.COMPLETE and len(t.values) == 2
        assert t.values[0] == t.user_attrs["curve"][-1]["eval_accuracy"]
        assert t.values[1] == t.user_attrs["device_seconds"] > 0  # the cost is the recorded figure
        assert t.intermediate_values == {}  # nothing reported to Optuna: it cannot prune two objectives
    assert "device_seconds=" in printed and "front " in printed and "best " not in printed.splitlines()[-1]
    # the fast reader gives the same two values as Optuna's ORM
    assert [t.values for t in trials_read.get_trials(study)] == [t.values for t in study.trials]


@pytest.mark.slow
def test_status_marks_the_pareto_front(swept, capsys):
    path, study, _ = swept
    front = {t.number for t in study.best_trials}
    assert cli.main(["status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["#", "state", "accuracy", "device_seconds", "front"]
    starred = {int(line.split()[0]) for line in lines[1:5] if line.split()[4] == "*"}
    assert starred == front
    assert lines[-1].startswith(f"pareto front: {len(front)} trial")
    assert cli.main(["status", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["value"], r["cost"]) for r in rows] == [tuple(t.values) for t in study.trials]
    assert {r["number"] for r in rows if r["pareto"]} == front


@pytest.mark.slow
def test_export_needs_a_trial_number_and_lists_the_front(swept, capsys):
    path, study, _ = swept
    out = path.parent / "picked" / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--trial" in err and "Pareto-optimal" in err
    listed = [line.split()[1].rstrip(":") for line in err.splitlines() if line.startswith("  trial ")]
    assert sorted(map(int, listed)) == sorted(t.number for t in study.best_trials)
    assert not out.parent.exists()  # nothing written
    dominated = [t for t in study.trials if t.number not in {b.number for b in study.best_trials}]
    chosen = (dominated or study.trials)[0]  # any COMPLETE trial may be exported, on the front or not
    assert cli.main(["export", str(path), "--out", str(out), "--trial", str(chosen.number)]) == 0
    assert f"trial {chosen.number} (accuracy=" in capsys.readouterr().out
    assert yaml.safe_load(out.read_text()) == chosen.user_attrs["training_arguments"]
    manifest = yaml.safe_load(out.with_name("best.manifest.yaml").read_text())
    assert manifest["trial"] == chosen.number and manifest["value"] == chosen.values[0]
    assert manifest["cost"] == "device_seconds" and manifest["cost_value"] == chosen.values[1]
    assert manifest["pareto_optimal"] == (chosen.number in {b.number for b in study.best_trials})
    assert cli.main(["export", str(path), "--out", str(out), "--trial", "99"]) == 2
    assert "has no trial 99" in capsys.readouterr().err


@pytest.mark.slow
def test_report_collects_the_front(swept):
    _, study, _ = swept
    data = report.collect(study)
    s = data.summary
    assert s.best is None and s.cost == "device_seconds"
    assert [f.number for f in s.front] == [t.number for t in pareto.pareto_front(study)]
    assert data.figures[0] == "pareto" and data.pareto.front == tuple(f.number for f in s.front)
    assert dict(zip(data.pareto.numbers, zip(data.pareto.values, data.pareto.costs, strict=True), strict=True)) == {
        t.number: tuple(t.values) for t in study.trials
    }
    assert data.history.values == tuple(t.values[0] for t in study.trials)  # other figures: the quality objective
    best = min(study.trials, key=lambda t: (-t.values[0], t.values[1]))  # "what won": quality, then cost
    assert {w.param: w.best for w in data.winners} == best.params and best.number in data.pareto.front
    page = report_html.render(data)
    assert 'id="figure-pareto"' in page and "Pareto-optimal trial" in page


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_of_a_cost_study_renders_in_chromium(swept, tmp_path):
    """The Pareto figure and the others drawn by a real browser, with no JavaScript error."""
    from tests.test_report import DRAWN, report_in_chromium

    data = report.collect(swept[1])
    path = tmp_path / "report.html"
    path.write_text(report_html.render(data), encoding="utf-8")
    with report_in_chromium(path, len(data.figures)) as (page, errors):
        ids = page.evaluate(f"() => ({DRAWN})().map(e => e.id)")
        markers = page.evaluate("() => document.querySelectorAll('#figure-pareto .scatterlayer .point').length")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert errors == []
    assert ids == [f"figure-{name}" for name in data.figures] and ids[0] == "figure-pareto"
    assert markers == len(data.pareto.numbers)  # every completed trial is a point of the Pareto figure


def test_the_front_of_the_report_is_optunas(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    space = {"learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}
    values = [(0.5, 10.0), (0.7, 20.0), (0.7, 15.0), (0.6, 30.0), (0.9, 40.0), (0.9, 40.0), (0.4, 5.0)]
    for i, v in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(values=list(v), params={"learning_rate": 1e-4 * (i + 1)}, distributions=space)
        )
    study.set_user_attr("spec", {"objective": {"metric": "accuracy", "cost": "train_seconds"}})
    front = report.collect(study).summary.front
    assert sorted(f.number for f in front) == sorted(t.number for t in study.best_trials) == [0, 2, 4, 5, 6]
    assert [f.number for f in front] == [4, 5, 2, 0, 6]  # best quality first
    assert [f.number for f in front] == [t.number for t in pareto.pareto_front(study)]


@pytest.mark.slow
def test_warm_start_from_a_study_with_a_cost_takes_its_front(swept, make_study):
    path, study, _ = swept
    spec = load_spec(make_study())
    batch = warm_start.warm_start(spec, "tiny", f"sqlite:///{path.parent / 'tiny.db'}", k=10)
    numbers = [int(a["warm_start"].split("#")[1]) for a in batch.attrs]
    front = pareto.pareto_front(study)
    assert set(numbers) <= {t.number for t in front} and numbers[0] == front[0].number
    assert "on the Pareto front" in batch.notes[0]


@pytest.mark.slow
def test_resume_cannot_add_or_drop_the_cost(make_study, capsys):
    path = make_study(budget={"n_trials": 1}, evaluation={"every": 1.0}, train={"max_steps": 2, "use_cpu": True})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["run", str(path), "--quiet", "--set", "objective.cost=device_seconds", "--n-trials", "2"]) == 2
    assert "objective.cost: the stored study 'tiny' was created without objective.cost" in capsys.readouterr().err
    assert len(load(path).trials) == 1
    url = f"sqlite:///{path.parent / 'tiny.db'}"
    optuna.create_study(study_name="both", storage=url, directions=["maximize", "minimize"])
    assert cli.main(["run", str(path), "--quiet", "--set", "name=both", "--storage", url]) == 2
    assert "objective.cost: the stored study 'both' was created with a cost objective" in capsys.readouterr().err


def test_spec_rules_of_a_cost(make_study):
    spec = load_spec(make_study(objective=COST, pruner={}))
    assert spec.objective.directions == ["maximize", "minimize"] and spec.pruner.type == "none"
    assert spec.to_dict()["objective"]["cost"] == "device_seconds"
    with pytest.raises(SpecError, match="pruner.type: 'median' cannot run with objective.cost"):
        load_spec(make_study(objective=COST, pruner={"type": "median"}))
    with pytest.raises(SpecError, match="objective.cost: 'flops' is not allowed"):
        load_spec(make_study(objective={"cost": "flops"}))
    with pytest.raises(SpecError, match="model.save_best: with objective.cost"):
        load_spec(make_study(objective=COST, model__save_best=True))
    assert load_spec(make_study(sampler={"type": "nsga2", "population_size": 4})).sampler.options == {
        "population_size": 4
    }
    with pytest.raises(SpecError, match="sampler.population_size: must be >= 2"):
        load_spec(make_study(sampler={"type": "nsga2", "population_size": 1}))


class FakeTrial:
    """Stands in for an optuna.Trial of a multi-objective study: report and should_prune raise there."""

    def report(self, value, step):
        raise NotImplementedError("Trial.report is not supported for multi-objective optimization.")

    def should_prune(self):
        raise NotImplementedError("Trial.should_prune is not supported for multi-objective optimization.")


class State:
    def __init__(self, step: int, max_steps: int = 10) -> None:
        self.global_step, self.max_steps, self.epoch = step, max_steps, 0.5


def test_the_reporter_of_a_cost_study_records_and_guards_divergence_without_reporting():
    reporter = OptunaReporter(FakeTrial(), "eval_accuracy", divergence_factor=10.0, report=False)
    reporter.on_log(None, State(1), None, logs={"loss": 1.0})
    reporter.on_evaluate(None, State(2), None, metrics={"eval_accuracy": 0.5, "eval_loss": 1.1})
    assert [p["step"] for p in reporter.curve] == [2] and reporter.curve[0]["eval_accuracy"] == 0.5
    with pytest.raises(optuna.TrialPruned):
        reporter.on_log(None, State(3), None, logs={"loss": float("nan")})
    assert reporter.pruned_reason.startswith("diverged: train loss nan at step 3")


def test_a_diverged_trial_of_a_cost_study_is_pruned_with_its_reason(make_study):
    path = make_study(
        objective=COST,
        budget={"n_trials": 1},
        search={"learning_rate": [1e3]},  # explodes at once
        evaluation={"every": 0.5},
        train={"max_steps": 6, "logging_steps": 1, "use_cpu": True},
        divergence={"loss_factor": 1.5},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    (trial,) = load(path).trials
    assert trial.state == TrialState.PRUNED and trial.values is None
    assert trial.user_attrs["prune_reason"].startswith("diverged: train loss")


def test_progress_shows_both_values_and_the_front_size():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.5, 3.0]))
    study.add_trial(optuna.trial.create_trial(values=[0.8, 9.0]))
    lines = []
    progress = Progress("accuracy", cost="device_seconds", stream=None)
    progress.say = lambda line, always=False: lines.append(line)
    progress.finished(study, study.trials[1])
    assert "accuracy=0.8 device_seconds=9" in lines[0] and lines[0].endswith("front 2 trials")
