"""The versions a trial ran with: read in its own process, recorded on the trial, carried by the manifest and
compared by `hpsearch train`."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import optuna
import pytest
import yaml

from hpsearch import cli
from hpsearch.results import export, versions
from hpsearch.results.record import StudyAttr, TrialAttr

from .test_generation import metric_package  # noqa: F401 (a fixture)


def test_every_trial_records_the_core_packages_at_their_installed_versions():
    found = versions.current()
    for name in versions.ALWAYS:
        assert found[name] == importlib.metadata.version(name)
    import torch

    assert found.get(versions.CUDA) == torch.version.cuda  # None, so absent, on a CPU build


def test_an_optional_package_is_recorded_only_once_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "rouge_score", raising=False)
    assert "rouge-score" not in versions.current()
    monkeypatch.setitem(sys.modules, "rouge_score", types.ModuleType("rouge_score"))
    assert versions.current()["rouge-score"] == importlib.metadata.version("rouge-score")


def test_a_user_metric_records_its_distribution_once_loaded(metric_package, monkeypatch):  # noqa: F811
    versions._metric_distributions.cache_clear()
    monkeypatch.delitem(sys.modules, "short_answers", raising=False)
    assert "short-answers" not in versions.current()
    import short_answers  # noqa: F401 (what hpsearch.training.scoring.load does for `answer_length`)

    assert versions.current()["short-answers"] == "0.1"
    versions._metric_distributions.cache_clear()


def test_differing_names_what_changed_and_what_is_missing():
    here = versions.current()
    recorded = {"torch": "0.0.1", "numpy": here["numpy"], "no-such-package-here": "1.0", "peft": None}
    differ = versions.differing(recorded)
    assert differ == {
        "torch": {"recorded": "0.0.1", "now": here["torch"]},
        "no-such-package-here": {"recorded": "1.0", "now": None},
    }
    line = versions.describe_differing(differ)
    assert line == f"torch {here['torch']} here, 0.0.1 recorded; no-such-package-here not installed here, 1.0 recorded"


def test_a_trial_without_recorded_versions_exports_the_exporting_process_s():
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(StudyAttr.SPEC, {"objective": {"metric": "accuracy"}})
    study.add_trial(
        optuna.trial.create_trial(value=0.5, user_attrs={TrialAttr.TRAINING_ARGUMENTS: {"learning_rate": 0.1}})
    )
    _, manifest = export.build(study, study.best_trial, "sqlite:///x.db")
    assert manifest["versions_from"] == "export" and manifest["versions"] == versions.current()


@pytest.mark.slow
def test_trials_record_their_versions_the_manifest_carries_them_and_train_warns_when_they_differ(
    make_study, capsys, tmp_path
):
    import transformers

    path = make_study(
        sampler={"type": "grid"},
        search={"learning_rate": [1e-3], "finetune": ["full", "lora"]},
        budget={"n_trials": 2},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}")
    recorded = {t.params["finetune"]: t.user_attrs[TrialAttr.VERSIONS] for t in study.trials}
    assert recorded["lora"]["peft"] == importlib.metadata.version("peft")
    for found in recorded.values():
        assert found["torch"] == importlib.metadata.version("torch")
        assert found["transformers"] == transformers.__version__
    # transformers' Trainer imports peft whenever it is installed, so a full fine-tune's process has it too.
    assert ("peft" in recorded["full"]) == transformers.utils.is_peft_available()

    assert cli.main(["export", str(path)]) == 0
    manifest_file = path.parent / "tiny.best" / "best.manifest.yaml"
    manifest = yaml.safe_load(manifest_file.read_text())
    assert manifest["versions"] == study.best_trial.user_attrs[TrialAttr.VERSIONS]
    assert manifest["versions_from"] == "trial"

    best = path.parent / "tiny.best" / "best.yaml"
    assert cli.main(["train", str(best), "--out", str(tmp_path / "same")]) == 0
    assert "package versions differ" not in capsys.readouterr().out
    manifest["versions"]["torch"] = "0.0.1"
    manifest_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    assert cli.main(["train", str(best), "--out", str(tmp_path / "older")]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "package versions differ" in line]
    here = importlib.metadata.version("torch")
    assert warnings == [
        f"warning: package versions differ from the trial's, so results may too: torch {here} here, 0.0.1 recorded"
    ]

    manifest["versions"] = ["torch"]
    manifest_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    assert cli.main(["train", str(best), "--out", str(tmp_path / "broken")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {manifest_file}: versions: ['torch'] is not allowed; a mapping of package to version"
    assert not (tmp_path / "broken").exists()
