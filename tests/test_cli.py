"""Bad input through the real CLI: exit status 2, a short message naming file and field, nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hpsearch import cli


def grid_continuous(path: Path) -> None:
    text = path.read_text().replace("type: random", "type: grid")
    path.write_text(text)


def missing_model(path: Path) -> None:
    text = path.read_text()
    start = text.index("name_or_path: ") + len("name_or_path: ")
    end = text.index("\n", start)
    path.write_text(text[:start] + "./no-such-model" + text[end:])


def malformed(path: Path) -> None:
    path.write_text(path.read_text() + "search: [unclosed\n")


def unknown_eval_label(path: Path) -> None:
    folder = path.parent / "intents"
    frame = pd.read_csv(folder / "validation.csv")
    frame.loc[3, "intent"] = "complaint"
    frame.to_csv(folder / "validation.csv", index=False)


CASES = [
    # id, study changes, a function that edits the file, the field named, a word of what is allowed
    ("malformed-yaml", {}, malformed, "malformed YAML", "line"),
    ("unknown-key", {"data__shuffle": True}, None, "data.shuffle", "text_column"),
    ("wrong-type", {"data__max_length": "long"}, None, "data.max_length", "int"),
    ("low-above-high", {"search__learning_rate__high": 1e-4}, None, "search.learning_rate.low", "below high"),
    ("log-low-zero", {"search__learning_rate__low": 0.0}, None, "search.learning_rate.low", "low > 0"),
    ("empty-choices", {"search__per_device_train_batch_size": []}, None, "search.per_device_train_batch_size", "empty"),
    ("grid-continuous", {}, grid_continuous, "search.learning_rate", "discrete"),
    ("unknown-sampler", {"sampler__type": "cmaes"}, None, "sampler.type", "grid, random, tpe"),
    ("unknown-pruner", {"pruner__type": "patient"}, None, "pruner.type", "median"),
    ("unknown-optimizer", {"search__optim": ["adamw_torch", "adam"]}, None, "search.optim", "sgd"),
    ("unknown-scheduler", {"train__lr_scheduler_type": "step"}, None, "train.lr_scheduler_type", "linear"),
    ("missing-data", {"data__path": "./missing-folder"}, None, "data.path", "no such file"),
    ("missing-split", {"data__eval_split": "test"}, None, "data.eval_split", "splits: train, validation"),
    ("missing-column", {"data__text_column": "query"}, None, "data.text_column", "columns: 'text', 'intent'"),
    ("eval-label-not-in-train", {}, unknown_eval_label, "data.eval_split", "complaint"),
    ("missing-model", {}, missing_model, "model.name_or_path", "no such model folder"),
    # neither a folder nor a hub id: huggingface_hub's HFValidationError was 'error: HFValidationError', exit 1
    ("not-a-hub-id", {"model__name_or_path": "a b"}, None, "model.name_or_path", "'a b' is not a local folder nor"),
    ("bad-override", {}, None, "--set", "KEY=VALUE"),
    ("label-missing", {}, lambda p: blank_label(p), "data.label_column", "have no 'intent'"),
    ("malformed-csv", {}, lambda p: broken_csv(p), "data.path", "cannot read validation.csv"),
    ("no-tokenizer", {}, lambda p: model_without_tokenizer(p), "model.name_or_path", "tokenizer"),
    ("too-long", {"data__max_length": 4096}, None, "data.max_length", "64 positions"),
    ("wrong-train-type", {"train__num_train_epochs": "three"}, None, "train.num_train_epochs", "float"),
]


def blank_label(path: Path) -> None:
    folder = path.parent / "intents"
    frame = pd.read_csv(folder / "train.csv")
    frame.loc[5, "intent"] = ""
    frame.to_csv(folder / "train.csv", index=False)


def broken_csv(path: Path) -> None:
    (path.parent / "intents" / "validation.csv").write_bytes(b'text,intent\n"unclosed,quote\n')


def model_without_tokenizer(path: Path) -> None:
    import shutil

    import yaml

    study = yaml.safe_load(path.read_text())
    bare = path.parent / "bare-model"
    shutil.copytree(study["model"]["name_or_path"], bare)
    for f in bare.iterdir():
        if "token" in f.name or f.name in ("vocab.txt", "special_tokens_map.json"):
            f.unlink()
    study["model"]["name_or_path"] = str(bare)
    path.write_text(yaml.safe_dump(study))


@pytest.mark.parametrize("verb", ["validate", "run"])
@pytest.mark.parametrize(("case", "changes", "edit", "field", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_and_writes_nothing(make_study, capsys, verb, case, changes, edit, field, allowed):
    path = make_study(**changes)
    if edit:
        edit(path)
    before = sorted(str(p) for p in path.parent.rglob("*"))
    extra = ["--set", "oops"] if case == "bad-override" else []
    assert cli.main([verb, str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: ")
    assert field in err and allowed in err
    assert len(err.splitlines()) <= 2
    assert sorted(str(p) for p in path.parent.rglob("*")) == before  # no database, no cache, no export


def test_validate_reports_what_it_checked(make_study, capsys):
    path = make_study()
    assert cli.main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "OK: study 'tiny'" in captured.out and "96 train / 32 eval rows, 4 labels" in captured.out
    assert "Map" not in captured.err  # the rows it encodes to check each tokenizer show no progress bar
    assert not (path.parent / "tiny.db").exists()


@pytest.mark.slow
def test_console_script_exit_statuses(make_study):
    path = make_study(sampler__type="bayes")
    exe = Path(sys.executable).parent / "hpsearch"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    bad = subprocess.run([str(exe), "run", str(path)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"error: {path}: sampler.type: 'bayes' is not allowed; allowed: grid, random, tpe, nsga2, gp, qmc"
    )
    assert bad.stdout == ""
    usage = subprocess.run([str(exe), "run"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "STUDY" in usage.stderr


@pytest.mark.slow
# SIGTERM goes through the same handler: test_workers sends it to a 2-worker run, test_slurm through scancel.
@pytest.mark.parametrize("signum", ["SIGINT"])
def test_ctrl_c_exits_130_and_the_same_command_resumes(make_study, signum):
    import signal
    import time

    import optuna

    path = make_study(
        budget={"n_trials": 2}, evaluation={"every": 0.05}, train={"num_train_epochs": 10, "use_cpu": True}
    )
    exe = Path(sys.executable).parent / "hpsearch"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(exe), "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until the first trial is training
        if " step " in line or time.time() > deadline:
            break
    proc.send_signal(getattr(signal, signum))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted: run the same command again to resume" in err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}")
    assert [t.user_attrs.get("interrupted") for t in study.trials] == [True, None]
    assert study.trials[1].state.name == "WAITING" and study.trials[1].user_attrs["retry_of"] == 0  # queued
    assert study.trials[0].user_attrs["steps_trained"] > 0
    interrupted_params = study.trials[0].params
    resumed = subprocess.run(
        [str(exe), "run", str(path), "--quiet"], capture_output=True, text=True, env=env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}").trials
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == interrupted_params
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_a_killed_run_s_trial_is_failed_after_the_grace_period_and_re_run(make_study):
    import signal
    import time

    import optuna

    path = make_study(
        budget={"n_trials": 2},
        evaluation={"every": 0.05},
        train={"num_train_epochs": 10, "use_cpu": True},
        heartbeat={"interval": 1, "grace_period": 3, "max_retries": 1},
    )
    exe = Path(sys.executable).parent / "hpsearch"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(exe), "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until the first trial is training, then kill without warning
        if " step " in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    storage = f"sqlite:///{path.parent / 'tiny.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state.name for t in study.trials] == ["RUNNING"]
    # As if another machine's worker had died: a run on this host leaves that trial to its heartbeat (its own
    # dead trials it re-runs at once: tests/test_workers.py).
    study._storage.set_trial_user_attr(study.trials[0]._trial_id, "worker", "another-host:1")
    time.sleep(4)  # past the grace period
    resumed = subprocess.run(
        [str(exe), "run", str(path), "--quiet"], capture_output=True, text=True, env=env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert trials[0].state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].params == trials[0].params and retry[0].state.name == "COMPLETE"
    assert [t.state.name for t in trials].count("COMPLETE") == 2  # the budget: 2 finished, the dead one aside
    assert "RUNNING" not in [t.state.name for t in trials]
    shown = subprocess.run([str(exe), "status", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert "[no heartbeat: worker died; re-run]" in shown.stdout


# --- the storage: refused before anything is written, named by where it came from -------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:////nonexistent/dir/x.db", "folder /nonexistent/dir does not exist"),
        ("sqlite:////proc/x.db", "no file can be created in folder /proc"),
        ("sqlite:///{tmp}", "is a folder, not a file"),
    ],
    ids=["missing-folder", "unwritable-folder", "a-folder"],
)
@pytest.mark.parametrize("verb", ["validate", "run", "worker", "storage-server"])
def test_a_sqlite_storage_that_cannot_be_written_is_refused_first(make_study, capsys, verb, url, problem):
    path = make_study()
    url = url.format(tmp=path.parent)
    before = sorted(path.parent.rglob("*"))
    argv = [verb, "--storage", url] if verb == "storage-server" else [verb, str(path), "--storage", url]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    where = "hpsearch storage-server" if verb == "storage-server" else str(path)
    assert err.startswith(f"error: {where}: --storage: {url!r}: ") and problem in err, err
    assert len(err.splitlines()) == 1
    assert sorted(path.parent.rglob("*")) == before


def test_a_storage_url_names_where_it_came_from(make_study, capsys, monkeypatch):
    """--storage, then $HPSEARCH_STORAGE, then the study file's storage key (docs/reference/cli.md)."""
    monkeypatch.setenv("HPSEARCH_STORAGE", "sqlite:////nonexistent/dir/env.db")
    path = make_study()
    assert cli.main(["validate", str(path)]) == 2
    assert f"error: {path}: $HPSEARCH_STORAGE: 'sqlite:////nonexistent/dir/env.db'" in capsys.readouterr().err
    assert cli.main(["validate", str(path), "--storage", "sqlite:////nonexistent/dir/flag.db"]) == 2
    assert f"error: {path}: --storage: 'sqlite:////nonexistent/dir/flag.db'" in capsys.readouterr().err
    assert cli.main(["storage-server"]) == 2
    assert "error: hpsearch storage-server: $HPSEARCH_STORAGE: 'sqlite:////nonexistent" in capsys.readouterr().err
    monkeypatch.delenv("HPSEARCH_STORAGE")
    path = make_study(storage="sqlite:////nonexistent/dir/file.db")
    assert cli.main(["validate", str(path)]) == 2
    assert f"error: {path}: storage: 'sqlite:////nonexistent/dir/file.db'" in capsys.readouterr().err


def test_reading_verbs_leave_a_database_as_they_found_it(make_study, capsys):
    """A plain Optuna database (rollback journal) holding another study: refused, not switched to WAL."""
    import sqlite3
    from contextlib import closing

    import optuna

    path = make_study()
    db = path.parent / "tiny.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    before = db.read_bytes()
    for verb in ("status", "export", "report", "simulate"):
        assert cli.main([verb, str(path)]) == 2
        assert "no study named 'tiny'" in capsys.readouterr().err
    assert cli.main(["list", str(path)]) == 0
    assert db.read_bytes() == before
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix != ".yaml") == ["intents", "tiny.db"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "STUDY", "--bogus"], "error: hpsearch run: unrecognized arguments: --bogus"),
        (
            ["launch", "slurm", "STUDY", "--workers", "1", "-x"],
            "error: hpsearch launch slurm: unrecognized arguments: -x",
        ),
        (["run", "STUDY", "--n-trials", "abc"], "error: hpsearch run: argument --n-trials: invalid int value: 'abc'"),
        (["run"], "error: hpsearch run: the following arguments are required: STUDY"),
        (["frobnicate"], "error: hpsearch: argument VERB: invalid choice: 'frobnicate'"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_verb(tmp_path, capsys, argv, expected):
    argv = [str(tmp_path / "s.yaml") if a == "STUDY" else a for a in argv]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and len(err.splitlines()) == 1, err
    assert err.rstrip().endswith("--help)") and "usage:" not in err
    assert list(tmp_path.iterdir()) == []


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--help"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("usage: hpsearch run [-h]")
