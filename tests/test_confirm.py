"""`hpsearch confirm`: the search's best configs trained again with new seeds, in the study NAME.confirm."""

from __future__ import annotations

import json
import math
import statistics

import optuna
import pytest

from hpsearch import cli
from hpsearch.results import confirmation
from hpsearch.results.record import TrialAttr

MAXIMIZE = optuna.study.StudyDirection.MAXIMIZE


def _trial(value: float, number_params: dict, **attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=value,
        params=number_params,
        distributions={k: optuna.distributions.FloatDistribution(0, 1) for k in number_params},
        user_attrs=attrs,
    )


def _studies(search_values: list[float], runs: dict[int, list[float]]) -> tuple[optuna.Study, optuna.Study]:
    """An in-memory search (trial i has x = i / 10 and SEARCH_VALUES[i]) and its confirmation (RUNS:
    search trial -> values of its new seeds)."""
    storage = optuna.storages.InMemoryStorage()
    search = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for i, v in enumerate(search_values):
        search.add_trial(_trial(v, {"x": i / 10}, seed=42))
    confirm = optuna.create_study(study_name=confirmation.study_name("s"), storage=storage, direction="maximize")
    for number, values in runs.items():
        for k, v in enumerate(values, start=1):
            confirm.add_trial(_trial(v, {"x": number / 10}, confirm_of=number, seed=42 + k))
    return search, confirm


def test_the_winner_is_the_best_mean_with_the_search_trial_counted():
    search, _ = _studies([0.90, 0.80, 0.70], {0: [0.70, 0.72], 1: [0.82, 0.81]})
    c = confirmation.summarize(search)
    assert [x.trial for x in c.configs] == [1, 0]  # 0.81 beats trial 0's (0.90 + 0.70 + 0.72) / 3 = 0.773
    assert c.configs[0].values == (0.80, 0.82, 0.81) and c.configs[0].seeds == (42, 43, 44)  # seed order
    assert c.search_winner == 0 and c.changed
    mean, std = statistics.fmean([0.80, 0.82, 0.81]), statistics.stdev([0.80, 0.82, 0.81])
    assert c.winner.mean == pytest.approx(mean) and c.winner.std == pytest.approx(std)
    half = 4.302652729911275 * std / math.sqrt(3)  # Student t, 2 degrees of freedom, 97.5 %
    assert (c.winner.low, c.winner.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert c.config_spread == pytest.approx(statistics.stdev([c.configs[0].mean, c.configs[1].mean]))
    assert c.seed_spread == pytest.approx(statistics.fmean([x.std for x in c.configs]))
    text = confirmation.table(c, "accuracy")
    assert "confirmed winner: trial 1" in text and "the search's winner was trial 0" in text


def test_a_confirmation_that_left_out_the_search_s_winner_neither_blames_it_nor_exports_another():
    """`confirm --trials 1 2` when trial 0 won the search: trials 1 and 2 never met it over seeds."""
    from hpsearch.results import export

    search, _ = _studies([0.90, 0.60, 0.50], {1: [0.62], 2: [0.52]})
    c = confirmation.summarize(search)
    assert c.winner.trial == 1 and not c.covers_search_winner and not c.changed
    text = confirmation.table(c, "accuracy")
    assert "did not hold up" not in text
    assert "the search's winner, trial 0, was not confirmed: export keeps it" in text
    assert export.pick_trial(search, None, c).number == 0
    covered, _ = _studies([0.90, 0.60], {0: [0.30], 1: [0.62]})  # trial 0 confirmed (mean 0.60), and beaten
    assert export.pick_trial(covered, None, confirmation.summarize(covered)).number == 1


def test_a_cost_study_s_export_needs_a_trial_even_after_confirm():
    """The confirmed means rank quality alone; which trade-off of the front to export is the user's."""
    from hpsearch.errors import SpecError
    from hpsearch.results import export

    storage = optuna.storages.InMemoryStorage()
    search = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    for i, (value, cost) in enumerate(((0.9, 10.0), (0.8, 1.0))):
        search.add_trial(
            optuna.trial.create_trial(
                values=[value, cost],
                params={"x": i / 10},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                user_attrs={"seed": 42},
            )
        )
    confirm = optuna.create_study(
        study_name=confirmation.study_name("s"), storage=storage, directions=["maximize", "minimize"]
    )
    for number, value in ((0, 0.88), (1, 0.79)):
        confirm.add_trial(
            optuna.trial.create_trial(
                values=[value, 1.0],
                params={"x": number / 10},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                user_attrs={"confirm_of": number, "seed": 43},
            )
        )
    c = confirmation.summarize(search)
    assert c.winner.trial == 0
    with pytest.raises(SpecError, match="no one best trial; pick one of its 2 Pareto-optimal trials"):
        export.pick_trial(search, None, c)


def test_a_tie_goes_to_the_smaller_spread_and_an_unconfirmed_search_has_none():
    search, _ = _studies([0.80, 0.80], {0: [0.70, 0.90], 1: [0.79, 0.81]})
    c = confirmation.summarize(search)
    assert c.configs[0].mean == pytest.approx(c.configs[1].mean)
    assert c.winner.trial == 1  # the same mean, less spread
    lonely = optuna.create_study(direction="maximize")
    assert confirmation.summarize(lonely) is None


@pytest.mark.slow
def test_confirm_trains_the_top_configs_with_new_seeds_resumes_and_refuses_what_is_not_in_the_study(
    make_study, tmp_path, capsys
):
    path = make_study(
        search={"learning_rate": [3e-3, 1e-2, 3e-2], "per_device_train_batch_size": [8]},
        sampler={"type": "grid"},
        budget={"n_trials": 3},
    )
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    assert cli.main(["run", str(path), "--quiet"]) == 0
    search = optuna.load_study(study_name="tiny", storage=storage)
    ranked = sorted(search.trials, key=lambda t: -t.value)
    capsys.readouterr()

    assert cli.main(["confirm", str(path), "--top-k", "2", "--seeds", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    confirm = optuna.load_study(study_name="tiny.confirm", storage=storage)
    assert confirm.user_attrs["confirms"] == "tiny"
    runs = {(t.user_attrs[TrialAttr.CONFIRM_OF], t.user_attrs[TrialAttr.SEED]) for t in confirm.trials}
    assert runs == {(t.number, s) for t in ranked[:2] for s in (43, 44)}
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in confirm.trials)
    for t in confirm.trials:  # the config, trained again: same params; its seed in the arguments it ran with
        origin = search.trials[t.user_attrs[TrialAttr.CONFIRM_OF]]
        assert t.params == origin.params and t.user_attrs["training_arguments"]["seed"] == t.user_attrs["seed"]
    # another seed: another head and data order, so another model (the loss shows it where accuracy may tie)
    losses = [
        t.user_attrs["curve"][-1]["eval_loss"] for t in [ranked[0], *confirm.trials] if t.params == ranked[0].params
    ]
    assert len(losses) == 3 and len(set(losses)) == 3
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 3  # the search is untouched
    assert "confirmed winner: trial" in out and "95 % interval" in out

    # status shows it; its JSON gives each confirmed config's numbers
    assert cli.main(["status", str(path), "--format", "json"]) == 0
    rows = {r["number"]: r for r in json.loads(capsys.readouterr().out)}
    best = rows[ranked[0].number]["confirmed"]
    assert best["n"] == 3 and best["values"][0] == ranked[0].value
    assert best["mean"] == pytest.approx(statistics.fmean(best["values"]))
    assert "confirmed" not in rows[ranked[2].number]

    # export takes the confirmed winner, with its numbers; train compares its value with the interval
    winner = confirmation.summarize(optuna.load_study(study_name="tiny", storage=storage)).winner
    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    assert "confirmed winner: trial" in capsys.readouterr().out
    import yaml

    manifest = yaml.safe_load((tmp_path / "best.manifest.yaml").read_text())
    assert manifest["trial"] == winner.trial and manifest["confirmation"]["winner"] is True
    assert manifest["confirmation"]["values"] == list(winner.values)
    assert cli.main(["train", str(out), "--out", str(tmp_path / "model")]) == 0
    result = json.loads((tmp_path / "model" / "hpsearch_train.json").read_text())
    assert result["matches"] is True  # the search trial's own seed: the same run again
    assert result["confirmation_interval"] == [winner.low, winner.high] and result["confirmation_seeds"] == 3
    assert result["within_confirmation"] == (winner.low <= result["retrained_value"] <= winner.high)
    assert "95 % interval" in capsys.readouterr().out

    # the report answers "how sure is the winner?"
    from hpsearch.results.report.collect import collect

    data = collect(optuna.load_study(study_name="tiny", storage=storage))
    assert data.sections[0] == "confirmation" and data.confirmation.winner == winner
    assert cli.main(["report", str(path), "--out", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "How sure is the winner?" in page and 'id="figure-confirmation"' in page
    assert f"confirmed winner: trial {winner.trial}" in page

    # resumable: nothing left to train; one more seed queues one trial per config
    assert cli.main(["confirm", str(path), "--top-k", "2", "--seeds", "2", "--quiet"]) == 0
    assert len(optuna.load_study(study_name="tiny.confirm", storage=storage).trials) == 4
    # two worker processes share the new trials (each an `hpsearch worker --confirm`)
    assert cli.main(["confirm", str(path), "--top-k", "2", "--seeds", "3", "--quiet", "--workers", "2"]) == 0
    seeds = [t.user_attrs["seed"] for t in optuna.load_study(study_name="tiny.confirm", storage=storage).trials]
    assert sorted(seeds) == [43, 43, 44, 44, 45, 45]
    late = [
        t for t in optuna.load_study(study_name="tiny.confirm", storage=storage).trials if t.user_attrs["seed"] == 45
    ]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in late)
    capsys.readouterr()

    # refused: a trial the study does not have; a study file that no longer trains what the search did
    assert cli.main(["confirm", str(path), "--trials", "7"]) == 2
    err = capsys.readouterr().err
    assert "--trials" in err and "7 not a completed trial" in err and "completed: 0, 1, 2" in err
    assert cli.main(["confirm", str(path), "--set", "train.num_train_epochs=3"]) == 2
    assert "train.num_train_epochs" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="tiny.confirm", storage=storage).trials) == 6  # nothing queued


def test_a_config_whose_new_seeds_have_not_finished_cannot_win_yet():
    # Trial 1's one run is the best value, but none of its confirmation trials has finished: trial 0,
    # confirmed over three runs, is the winner so far.
    search, confirm = _studies([0.80, 0.90], {0: [0.79, 0.81]})
    confirm.enqueue_trial({"x": 0.1}, user_attrs={"confirm_of": 1, "seed": 43})
    c = confirmation.summarize(search)
    assert [x.trial for x in c.configs] == [0, 1] and c.winner.trial == 0 and c.pending == 1
    assert "confirmed winner so far: trial 0" in confirmation.table(c, "accuracy")
    lonely, _ = _studies([0.80], {})
    lonely_confirm = confirmation.load(lonely)
    lonely_confirm.enqueue_trial({"x": 0.0}, user_attrs={"confirm_of": 0, "seed": 43})
    assert confirmation.summarize(lonely).winner is None


def test_the_configs_are_the_best_distinct_ones_and_with_a_cost_the_pareto_fronts():
    from hpsearch.orchestration import confirm

    search, _ = _studies([0.70, 0.90, 0.90, 0.80], {})
    search.add_trial(_trial(0.95, {"x": 0.1}, seed=42))  # trial 4 repeats trial 1's config, better
    assert [t.number for t in confirm.chosen(search, 3)] == [4, 2, 3]  # one trial per config, best first
    assert confirm.new_seeds(search.trials[0], 3) == [43, 44, 45]

    costly = optuna.create_study(directions=["maximize", "minimize"])
    for value, cost, x in ((0.9, 10.0, 0.1), (0.8, 1.0, 0.2), (0.7, 5.0, 0.3), (0.95, 20.0, 0.4)):
        costly.add_trial(
            optuna.trial.create_trial(
                values=[value, cost], params={"x": x}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)}
            )
        )
    # trial 2 (0.7 at cost 5) is dominated by trial 1 (0.8 at cost 1): the front is 3, 0, 1, best quality first
    assert [t.number for t in confirm.chosen(costly, 5)] == [3, 0, 1]


@pytest.mark.parametrize("flag", ["--top-k", "--seeds"])
@pytest.mark.parametrize(
    ("value", "message"), [(0, "must be > 0, got 0"), (2**31, "2147483648 is not allowed; at most 2147483647")]
)
def test_a_count_below_one_or_above_the_trials_a_study_holds_is_refused_before_anything_is_written(
    make_study, tmp_path, capsys, flag, value, message
):
    """The flags are checked by confirm.top_k's and confirm.seeds' own type, in its words: the bound had a
    second home in confirm.plan, with its own message ('must be a whole number in [1, 2147483647], got 0')."""
    path = make_study()
    assert cli.main(["confirm", str(path), flag, str(value)]) == 2
    assert capsys.readouterr().err == f"error: hpsearch confirm: {flag}: {message}\n"
    assert not (tmp_path / "tiny.db").exists()


def test_the_flags_override_the_study_files_settings_and_every_wrong_one_is_named():
    from hpsearch.orchestration import confirm
    from hpsearch.spec import SpecError
    from hpsearch.spec.sections import ConfirmSpec

    in_file = ConfirmSpec(top_k=4, seeds=5)
    assert confirm.flags_over(in_file, top_k=2, seeds=None) == ConfirmSpec(top_k=2, seeds=5)
    assert confirm.flags_over(in_file, top_k=None, seeds=None) == in_file
    with pytest.raises(SpecError) as refused:
        confirm.flags_over(in_file, top_k=0, seeds=-1)
    assert str(refused.value).splitlines() == [
        "hpsearch confirm: --top-k: must be > 0, got 0",
        "hpsearch confirm: --seeds: must be > 0, got -1",
    ]


def test_confirming_a_study_that_never_ran_or_joining_a_confirmation_never_queued_exits_2(make_study, capsys):
    path = make_study()
    assert cli.main(["confirm", str(path)]) == 2
    assert "tiny" in capsys.readouterr().err
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}", direction="maximize")
    assert cli.main(["confirm", str(path)]) == 2
    assert "has no completed trial to confirm" in capsys.readouterr().err
    assert cli.main(["worker", str(path), "--confirm"]) == 2
    assert "run `hpsearch confirm` first" in capsys.readouterr().err


def test_a_study_not_run_by_hpsearch_is_refused_as_export_refuses_it(make_study, capsys):
    """A plain Optuna study of the same name: its trials recorded no training arguments to train again."""
    path = make_study()
    db = path.parent / "tiny.db"
    raw = optuna.create_study(study_name="tiny", storage=f"sqlite:///{db}", direction="maximize")
    raw.optimize(lambda t: t.suggest_float("learning_rate", 1e-3, 1e-2, log=True), n_trials=2)
    before = db.read_bytes()
    for verb in ("confirm", "export"):
        assert cli.main([verb, str(path)]) == 2
        assert "has no training_arguments: it was not run by hpsearch" in capsys.readouterr().err
    assert optuna.study.get_all_study_names(f"sqlite:///{db}") == ["tiny"]  # no tiny.confirm
    assert db.read_bytes() == before
