"""status.py: `hpsearch list` over a storage holding several studies."""

import json

from hpsearch import cli


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
