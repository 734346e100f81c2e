"""export's ready-to-run files and `hpsearch train`: a model that loads and scores like its trial."""

import json
from pathlib import Path

import optuna
import pytest
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments

from hpsearch import cli
from hpsearch.spec import SpecError


def sweep_and_export(make_study, capsys, **changes):
    path = make_study(budget={"n_trials": 2}, **changes)
    assert cli.main(["run", str(path), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(path)]) == 0
    out = capsys.readouterr().out
    best = path.parent / "tiny.best" / "best.yaml"
    assert f"retrain it with: hpsearch train {best}" in out
    return path, best


@pytest.mark.slow
def test_export_writes_arguments_json_and_manifest(make_study, capsys, tmp_path):
    path, best = sweep_and_export(make_study, capsys)
    arguments = yaml.safe_load(best.read_text())
    assert json.loads(best.with_suffix(".json").read_text()) == arguments
    TrainingArguments(output_dir=str(tmp_path / "o"), **json.loads(best.with_suffix(".json").read_text()))
    manifest = yaml.safe_load((best.parent / "best.manifest.yaml").read_text())
    assert manifest["train_command"] == f"hpsearch train {best}"
    assert manifest["spec"]["name"] == "tiny" and manifest["steps_trained"] > 0


@pytest.mark.slow
def test_train_reproduces_the_trial_and_saves_a_loadable_model(make_study, capsys, tmp_path):
    path, best = sweep_and_export(make_study, capsys)
    model_dir = tmp_path / "model"
    assert cli.main(["train", str(best), "--out", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"saved full model and tokenizer to {model_dir}" in out and "matches within 0.01" in out
    assert "\naccuracy: retrained " in out  # the metric as status and export name it, not eval_accuracy
    result = json.loads((model_dir / "hpsearch_train.json").read_text())
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}")
    assert result["trial"] == study.best_trial.number
    assert result["trial_value"] == study.best_value
    # the same data, arguments and seed on the same device: the trial's metric, reproduced exactly (train
    # skips the trial's intermediate evaluations, which move no random state a step draws from)
    assert result["retrained_value"] == study.best_value and result["matches"] is True
    assert result["data_changed"] is False
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.id2label == {0: "cancel", 1: "password", 2: "refund", 3: "track"}
    logits = model(**tokenizer(["reset my password please"], return_tensors="pt")).logits
    assert logits.shape == (1, 4)


@pytest.mark.slow
def test_train_on_all_data_uses_the_trials_step_count(make_study, capsys, tmp_path):
    path, best = sweep_and_export(make_study, capsys)
    manifest = yaml.safe_load((best.parent / "best.manifest.yaml").read_text())
    assert cli.main(["train", str(best), "--out", str(tmp_path / "m"), "--all-data"]) == 0
    result = json.loads((tmp_path / "m" / "hpsearch_train.json").read_text())
    assert result["steps"] == manifest["steps_trained"] and result["matches"] is None
    assert "no comparison with the trial" in capsys.readouterr().out


@pytest.mark.slow
def test_train_notices_changed_data(make_study, capsys, tmp_path):
    path, best = sweep_and_export(make_study, capsys)
    csv = path.parent / "intents" / "train.csv"
    csv.write_text(csv.read_text().replace("please", "pls"))
    assert cli.main(["train", str(best), "--out", str(tmp_path / "m")]) == 0
    assert "warning: the data's fingerprint differs from the trial's" in capsys.readouterr().out


def test_train_without_an_export_exits_2(tmp_path, capsys):
    assert cli.main(["train", str(tmp_path / "nothing.yaml")]) == 2
    assert "nothing.yaml: no such file (write it with: hpsearch export STUDY)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_broken_manifest_exits_2_before_any_training(make_study, capsys, tmp_path):
    path, best = sweep_and_export(make_study, capsys)
    manifest_file = best.parent / "best.manifest.yaml"
    manifest = yaml.safe_load(manifest_file.read_text())
    for key in ("value", "spec", "steps_trained"):
        broken = {k: v for k, v in manifest.items() if k != key}
        manifest_file.write_text(yaml.safe_dump(broken))
        assert cli.main(["train", str(best), "--out", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {manifest_file}: {key}: missing or not ")
        assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_export_to_a_json_file_writes_json_only(make_study, capsys, tmp_path):
    path, _ = sweep_and_export(make_study, capsys)
    out = tmp_path / "x.json"
    assert cli.main(["export", str(path), "--format", "json", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.glob("x*")) == ["x.json", "x.manifest.json"]
    json.loads(out.read_text())
    json.loads((tmp_path / "x.manifest.json").read_text())


def hand_study(path: Path, metric: str = "accuracy") -> optuna.Study:
    """Study `tiny` in the storage of study file `path`, as hpsearch recorded it: its spec and one trial with
    the training arguments it ran with (no training)."""
    from hpsearch.results.record import StudyAttr, TrialAttr

    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}", direction="maximize")
    study.set_user_attr(StudyAttr.SPEC, {"name": "tiny", "objective": {"metric": metric}})
    study.add_trial(optuna.trial.create_trial(value=0.75, user_attrs={TrialAttr.TRAINING_ARGUMENTS: {"seed": 1}}))
    return study


def test_export_names_the_metric_as_status_does(make_study, capsys, tmp_path):
    path = make_study()
    hand_study(path)
    assert cli.main(["status", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "best: trial 0, accuracy=0.75"
    assert cli.main(["export", str(path), "--out", str(tmp_path / "x" / "best.yaml")]) == 0
    assert capsys.readouterr().out.startswith("trial 0 (accuracy=0.75): wrote ")


@pytest.mark.parametrize(
    ("name", "read_as"), [("best.json", json.loads), ("BEST.JSON", json.loads), ("b.txt", yaml.safe_load)]
)
def test_an_export_without_format_writes_what_its_out_suffix_is_read_as(make_study, capsys, tmp_path, name, read_as):
    """YAML written into best.json failed the `hpsearch train best.json` export itself prints."""
    path = make_study()
    hand_study(path)
    out = tmp_path / "x" / name
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    assert read_as(out.read_text()) == {"seed": 1}
    manifest = next((tmp_path / "x").glob("*.manifest.*"))
    assert manifest.suffix == out.suffix and read_as(manifest.read_text())["trial"] == 0
    assert len(list((tmp_path / "x").iterdir())) == (2 if read_as is json.loads else 3)  # and BEST.json beside YAML


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        (
            "best.json",
            "yaml",
            "--format: yaml into 'best.json', which hpsearch train reads as JSON by its suffix; "
            "give --out a .yaml file, or leave --format out",
        ),
        (
            "best.yml",
            "json",
            "--format: json into 'best.yml', which hpsearch train reads as YAML by its suffix; "
            "give --out a .json file, or leave --format out",
        ),
    ],
)
def test_an_export_format_its_out_would_not_be_read_in_exits_2_writing_nothing(
    make_study, capsys, tmp_path, name, fmt, message
):
    path = make_study()
    hand_study(path)
    assert cli.main(["export", str(path), "--out", str(tmp_path / "x" / name), "--format", fmt]) == 2
    assert capsys.readouterr().err.strip() == f"error: hpsearch export: {message}"
    assert not (tmp_path / "x").exists()


def test_an_export_leaves_one_export_removing_its_earlier_files_of_another_name(make_study, capsys, tmp_path):
    """YAML then JSON and back: the earlier export's manifest and arguments file go (`hpsearch train` of a
    stale best.yaml exited 2, its manifest gone); a file export did not write stays, though named like one."""
    path = make_study()
    hand_study(path)
    folder = tmp_path / "x"
    folder.mkdir()
    mine = {
        "notes.manifest.yaml": "train_command: hpsearch train notes.yaml\n",  # another stem
        "notes.yaml": "mine: true\n",
        "best.manifest.yml": "mine: true\n",  # export's name, not export's content
        "best.yml": "mine: true\n",  # the arguments file of that name: no manifest of export's is for it
    }
    for name, text in mine.items():
        (folder / name).write_text(text)

    def export_as(fmt: str) -> str:
        assert cli.main(["export", str(path), "--format", fmt, "--out", str(folder / f"best.{fmt}")]) == 0
        return capsys.readouterr().out

    def one_export(arguments: str) -> None:  # its manifest is for its arguments; the user's files untouched
        manifest = folder / f"best.manifest{Path(arguments).suffix}"
        assert yaml.safe_load(manifest.read_text())["train_command"] == f"hpsearch train {folder / arguments}"
        assert {p.name: p.read_text() for p in folder.iterdir() if p.name in mine} == mine

    assert "removed" not in export_as("yaml")
    one_export("best.yaml")
    out = export_as("json")
    assert out.count("removed") == 2
    for name, by in (("best.manifest.yaml", "best.manifest.json"), ("best.yaml", "best.json")):
        assert f"removed {folder / name}: an earlier export's, replaced by {by}\n" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(["best.json", "best.manifest.json", *mine])
    one_export("best.json")
    out = export_as("yaml")  # best.json is the YAML export's TrainingArguments JSON now: rewritten, not removed
    assert out.count("removed") == 1 and f"removed {folder / 'best.manifest.json'}: an earlier export's" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(["best.json", "best.manifest.yaml", "best.yaml", *mine])
    one_export("best.yaml")


def test_an_export_to_best_yml_replaces_one_to_best_yaml_and_says_so_without_another_format(
    make_study, capsys, tmp_path
):
    """Both are YAML: the earlier export was removed (as it should: `hpsearch train best.yaml` would retrain a
    stale one) but reported 'left by an earlier export in another format'."""
    path = make_study()
    hand_study(path)
    folder = tmp_path / "x"
    for name in ("best.yaml", "best.yml"):
        assert cli.main(["export", str(path), "--out", str(folder / name)]) == 0
    out = capsys.readouterr().out
    assert "format" not in out and out.count("removed") == 2
    assert f"removed {folder / 'best.manifest.yaml'}: an earlier export's, replaced by best.manifest.yml\n" in out
    assert f"removed {folder / 'best.yaml'}: an earlier export's, replaced by best.yml\n" in out
    assert sorted(p.name for p in folder.iterdir()) == ["best.json", "best.manifest.yml", "best.yml"]


BEST = Path("best.yaml")


def test_an_export_of_a_study_keyed_by_step_is_migrated_to_the_samples_schedule():
    """A manifest of a study stored before schema version 3 carries Trainer's step schedule; hpsearch train
    turns its eval_steps into evaluation.every (a fraction as it was, steps times the trial's batch)."""
    from hpsearch.orchestration.retrain import _evaluation_on_samples

    old = {"eval_strategy": "steps", "eval_steps": 0.25, "logging_strategy": "steps", "logging_steps": 0.25}
    arguments = {**old, "learning_rate": 1e-3, "per_device_train_batch_size": 8}
    stored = {"schema_version": 2, "train": {"num_train_epochs": 2, "eval_steps": 0.25}}
    assert _evaluation_on_samples(stored, arguments, BEST) == {"learning_rate": 1e-3, "per_device_train_batch_size": 8}
    assert stored["train"] == {"num_train_epochs": 2} and stored["evaluation"] == {"every": 0.25}
    in_steps = {"train": {"eval_steps": 3, "eval_strategy": "steps"}}  # no version: 1
    migrated = _evaluation_on_samples(in_steps, {"eval_steps": 3, "per_device_train_batch_size": 8}, BEST)
    assert migrated == {"per_device_train_batch_size": 8} and in_steps["evaluation"] == {"every": 24}
    current = {"schema_version": 3, "train": {}}
    assert _evaluation_on_samples(current, {"eval_strategy": "no"}, BEST) == {"eval_strategy": "no"}
    with pytest.raises(SpecError, match=r"^best.yaml: eval_steps: None is not allowed; a number of steps"):
        _evaluation_on_samples(
            {"schema_version": 2, "train": {}}, {"eval_steps": None}, BEST
        )  # not stored: the export's


# --- bad input found before anything is written or trained (no sweep needed) ------------------------

MANIFEST = {
    "spec": {},
    "study": "s",
    "trial": 0,
    "metric": "eval_accuracy",
    "value": 0.5,
    "labels": [],
    "data": {},
    "steps_trained": 1,
}


def hand_export(folder, **arguments):
    best = folder / "best.yaml"
    best.write_text(yaml.safe_dump({"learning_rate": 1e-3, "seed": 42, **arguments}))
    (folder / "best.manifest.yaml").write_text(yaml.safe_dump(MANIFEST))
    return best


@pytest.mark.parametrize(
    ("arguments", "key", "message"),
    [
        ({"bogus_arg": 1}, "bogus_arg", "unknown key; search and train take transformers TrainingArguments"),
        ({"learning_rate": "abc"}, "learning_rate", "must be float, got 'abc'"),
        ({"optim": "adam"}, "optim", "'adam' is not allowed; allowed: adamw_torch"),
        (
            {"gradient_checkpointing": True, "activation_checkpointing": False},
            "gradient_checkpointing",
            "is the old name of activation_checkpointing, which is set too (activation_checkpointing)",
        ),
        # The study file's range checks, and what TrainingArguments itself refuses, before anything trains
        ({"learning_rate": float("nan")}, "learning_rate", "nan is not allowed; a finite number"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size", "0 is not allowed; per_device_train"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps", "0 is not allowed; gradient_accumul"),
        ({"seed": 10**20}, "seed", "100000000000000000000 is not allowed; a whole number in [0, 4294967295]"),
        ({"warmup_steps": -1}, "warmup_steps", "TrainingArguments rejects it: "),
        # What only the DataLoader and the Trainer refused, after the model and the data had loaded
        ({"dataloader_num_workers": -1}, "dataloader_num_workers", "-1 is not allowed; dataloader_num_workers must"),
        ({"report_to": "nowhere"}, "report_to", "'nowhere' is not allowed; allowed: none, all, azure_ml"),
    ],
)
def test_a_hand_edited_export_is_refused_naming_its_key(tmp_path, capsys, arguments, key, message):
    best = hand_export(tmp_path, **arguments)
    before = sorted(tmp_path.iterdir())
    assert cli.main(["train", str(best), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {best}: {key}: {message}"), err
    assert len(err.splitlines()) == 1 and sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("file", "content", "key", "message"),
    [
        ("best.yaml", b"learning_rate: caf\xe9\n", "", "is not UTF-8 text (byte 0xe9 on line 1)"),
        ("best.yaml", b"a: " + b"[" * 5000 + b"]" * 5000, "", "nested too deeply to be an export"),
        ("best.manifest.yaml", b"study: caf\xe9\n", "", "is not UTF-8 text (byte 0xe9 on line 1)"),
        ("best.manifest.yaml", {"params": [1, 2]}, "params", "[1, 2] is not a mapping of param: value"),
        ("best.manifest.yaml", {"confirmation": "x"}, "confirmation", "'x' is not allowed; null, or numbers low"),
        ("best.manifest.yaml", {"confirmation": {"low": 0.1}}, "confirmation", "{'low': 0.1} is not allowed"),
    ],
    ids=["export-not-utf8", "export-too-deep", "manifest-not-utf8", "params-a-list", "confirmation-text", "no-high"],
)
def test_an_unreadable_export_or_manifest_exits_2_before_training(tmp_path, capsys, file, content, key, message):
    best = hand_export(tmp_path)
    target = tmp_path / file
    if isinstance(content, dict):
        target.write_text(yaml.safe_dump({**MANIFEST, **content}))
    else:
        target.write_bytes(content)
    assert cli.main(["train", str(best), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {target}: {key + ': ' if key else ''}{message}"), err
    assert len(err.splitlines()) == 1 and not (tmp_path / "m").exists()


def test_a_malformed_export_names_its_line_and_column(tmp_path, capsys):
    best = hand_export(tmp_path)
    best.write_text("learning_rate: [0.1\n")
    assert cli.main(["train", str(best), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {best}: malformed YAML: line 2, column 1: "), err


@pytest.mark.parametrize("out", ["/proc/nope/model", "{tmp}/best.yaml"], ids=["unwritable", "a-file"])
def test_train_checks_its_out_folder_before_training(tmp_path, capsys, monkeypatch, out):
    from hpsearch.orchestration import preflight

    monkeypatch.setattr(preflight, "check", lambda *a, **k: pytest.fail("reached preflight: would train"))
    best = hand_export(tmp_path)
    out = out.format(tmp=tmp_path)
    assert cli.main(["train", str(best), "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: hpsearch train: --out: {out}: "), err
    assert "no file can be created in folder /proc" in err or "is a file, not a folder" in err


def test_an_export_checks_every_file_before_writing_any(tmp_path):
    from hpsearch.errors import SpecError
    from hpsearch.results import export

    (tmp_path / "best.json").mkdir()  # where the TrainingArguments JSON would go
    with pytest.raises(SpecError, match=r"--out: .*best\.yaml \(written beside it: best\.json\): .*is a folder"):
        export.write({"seed": 1}, {"study": "s"}, tmp_path / "best.yaml", "yaml")
    assert [p.name for p in tmp_path.iterdir()] == ["best.json"]  # no best.yaml, no manifest
    for out, problem in ((tmp_path, "is a folder, not a file"), (Path("/proc/nope/best.yaml"), "/proc")):
        with pytest.raises(SpecError, match=f"hpsearch export: --out: {out}: .*{problem}"):
            export.write({"seed": 1}, {"study": "s"}, out, "yaml")
    assert not Path("/proc/nope").exists()
