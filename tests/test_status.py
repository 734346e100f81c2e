"""status.py: `hpsearch list` over a storage holding several studies."""

import json

import pytest

from hpsearch import cli


@pytest.mark.slow
def test_list_shows_every_study_with_progress(make_study, capsys, tmp_path):
    path = make_study(budget={"n_trials": 1})
    assert cli.main(["run", str(path), "--quiet"]) == 0  # the default storage: tiny.db beside the file
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    assert cli.main(["run", str(path), "--quiet", "--storage", url]) == 0
    assert cli.main(["run", str(path), "--quiet", "--storage", url, "--set", "name=other"]) == 0
    capsys.readouterr()
    assert cli.main(["list", "--storage", url, "--format", "json"]) == 0
    rows = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"tiny", "other"}
    assert rows["tiny"]["states"] == {"COMPLETE": 1} and rows["tiny"]["best_trial"] == 0
    assert rows["tiny"]["last_activity"] is not None
    assert cli.main(["list", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "study",
        "trials",
        "complete",
        "pruned",
        "failed",
        "running",
        "best",
        "last",
        "activity",
    ]
    assert [line.split()[:3] for line in table[1:]] == [["tiny", "1", "1"]]


def test_list_needs_a_storage(capsys, tmp_path):
    assert cli.main(["list"]) == 2
    assert "give a study file or --storage URL" in capsys.readouterr().err
    assert cli.main(["list", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert not (tmp_path / "none.db").exists()


def test_list_handles_multi_objective_studies_and_bad_urls(tmp_path, capsys):
    import optuna

    url = f"sqlite:///{tmp_path / 'm.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="two", storage=url, directions=["minimize", "maximize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    capsys.readouterr()
    assert cli.main(["list", "--storage", url, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["directions"] == ["minimize", "maximize"] and row["best_value"] is None
    assert row["states"] == {"COMPLETE": 2}
    assert cli.main(["list", "--storage", "not a url"]) == 2
    assert "hpsearch list: --storage: 'not a url' is not a SQLAlchemy URL" in capsys.readouterr().err


def test_status_shows_a_skipped_trial_as_skipped_with_its_reason(tmp_path, capsys):
    """A trial two workers started at one moment is stored as pruned but never trained: status says so."""
    import optuna

    from hpsearch.results import status

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, value=0.9))
    reason = "grid point 0 is trial 0's"
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions=dist,
            state=optuna.trial.TrialState.PRUNED,
            user_attrs={"skipped": reason, "prune_reason": f"skipped: {reason}"},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.1}, distributions=dist, state=optuna.trial.TrialState.PRUNED, intermediate_values={8: 0.1}
        )
    )
    assert [r["state"] for r in status.rows(study)] == ["COMPLETE", "SKIPPED", "PRUNED"]
    lines = status.table(study, "accuracy").splitlines()
    assert lines[2].split()[:2] == ["1", "SKIPPED"] and f"[skipped: {reason}]" in lines[2]
    assert lines[3].split()[:2] == ["2", "PRUNED"]
