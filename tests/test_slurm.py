"""`hpsearch launch slurm`: the sbatch script it writes, what it refuses, and a real single-node cluster
(tests/slurmcluster.py) running a 2-task array against a real PostgreSQL, scancelled and resubmitted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.orchestration import slurm
from hpsearch.training.trial_record import slurm_job

ROOT = Path(__file__).resolve().parent.parent
URL = "postgresql://hpsearch:s3cret-pw@db.example.org:5432/sweeps"
States = optuna.trial.TrialState


def launch(**changes) -> slurm.Launch:
    fields = dict(study=Path("/data/studies/b77.yaml"), name="b77", workers=8, storage_url=URL, workdir=Path("/w"))
    return slurm.Launch(**{**fields, **changes})


# --- the script ------------------------------------------------------------------------------------


def directives(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_the_script_is_one_array_of_workers_with_their_resources_and_no_password():
    text = slurm.script(
        launch(
            gpus_per_worker=2,
            partition="gpu",
            time="12:00:00",
            overrides=("budget.n_trials=40",),
            sbatch_args=("--cpus-per-task=8",),
        )
    )
    assert directives(text) == [
        "--job-name=hpsearch-b77",
        "--array=0-7",
        "--ntasks=1",
        "--gres=gpu:2",
        "--partition=gpu",
        "--time=12:00:00",
        "--chdir=/w",
        "--output=/w/hpsearch-b77-%A_%a.out",
        "--export=ALL",
        "--cpus-per-task=8",  # the user's, last: it overrides ours
    ]
    command = text.splitlines()[-1]
    assert command == f"exec {sys.executable} -m hpsearch.cli worker /data/studies/b77.yaml --set=budget.n_trials=40"
    assert "s3cret-pw" not in text and "postgresql://hpsearch:***@db.example.org:5432/sweeps" in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_paths_with_spaces_quotes_or_a_hash_are_quoted_as_sbatch_reads_them():
    text = slurm.script(launch(workdir=Path('/w/runs #1 "b\\77"')))
    assert '#SBATCH --chdir="/w/runs #1 \\"b\\\\77\\""' in text.splitlines()
    assert '#SBATCH --output="/w/runs #1 \\"b\\\\77\\"/hpsearch-b77-%A_%a.out"' in text.splitlines()
    assert "#SBATCH --chdir=/w" in slurm.script(launch()).splitlines()  # plain paths stay as they are


def test_without_gpus_partition_or_time_slurm_decides():
    found = directives(slurm.script(launch(workers=1)))
    assert "--array=0-0" in found
    assert not [d for d in found if d.startswith(("--gres", "--partition", "--time"))]


def test_a_multi_device_study_asks_for_its_devices_per_worker(make_study, spy_sbatch, capsys, monkeypatch):
    monkeypatch.setenv("HPSEARCH_STORAGE", URL)
    path = make_study(resources={"devices_per_trial": 2})
    assert main(["launch", "slurm", str(path), "--workers", "3", "--dry-run"]) == 0
    assert "--gres=gpu:2" in directives(capsys.readouterr().out)  # the flag left out: the study's devices
    for given, why in (("1", "too few for one trial"), ("4", "2 would sit idle")):
        assert main(["launch", "slurm", str(path), "--workers", "3", "--gpus-per-worker", given]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"error: hpsearch launch slurm: --gpus-per-worker: {given} GPUs for a worker whose trials train on"
            f" resources.devices_per_trial = 2 ({why}): give 2, or leave the flag out\n"
        )
    assert not spy_sbatch.exists()


def test_a_one_device_study_refuses_more_gpus_per_worker(make_study, spy_sbatch, capsys, monkeypatch):
    """A worker runs one trial at a time on resources.devices_per_trial devices: a second GPU would sit idle."""
    monkeypatch.setenv("HPSEARCH_STORAGE", URL)
    path = make_study()
    assert main(["launch", "slurm", str(path), "--workers", "2", "--dry-run", "--gpus-per-worker", "2"]) == 2
    assert capsys.readouterr().err == (
        "error: hpsearch launch slurm: --gpus-per-worker: 2 GPUs for a worker whose trials train on"
        " resources.devices_per_trial = 1 (1 would sit idle): give 1, or leave the flag out\n"
    )
    for given, gres in (("1", ["--gres=gpu:1"]), ("0", [])):
        assert main(["launch", "slurm", str(path), "--workers", "2", "--dry-run", "--gpus-per-worker", given]) == 0
        assert [d for d in directives(capsys.readouterr().out) if d.startswith("--gres")] == gres
    assert not spy_sbatch.exists()


def test_the_script_refuses_to_run_without_the_storage_in_its_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
    done = subprocess.run(["bash", "-s"], input=slurm.script(launch()), text=True, capture_output=True, env=env)
    assert done.returncode == 2 and "HPSEARCH_STORAGE is not set" in done.stderr


@pytest.mark.parametrize(
    ("env", "job"),
    [
        ({"SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "44"}, "41_3"),
        ({"SLURM_JOB_ID": "44"}, "44"),
        ({}, None),
    ],
)
def test_a_trial_records_its_array_task_or_its_job(env, job):
    assert slurm_job(env) == job


@pytest.mark.parametrize("value", ["90", "30:00", "12:00:00", "2-00", "1-12:30", "1-00:00:00", "UNLIMITED"])
def test_slurm_time_formats_are_accepted(value):
    slurm.check(launch(time=value))


# --- the verb: refusals (exit 2, one line, nothing submitted) and the submission ---------------------


@pytest.fixture
def spy_sbatch(tmp_path, monkeypatch) -> Path:
    """An `sbatch` first on PATH that records its arguments, its storage variable and its script."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    record = tmp_path / "sbatch-call.json"
    (bin_ / "sbatch").write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'args': sys.argv[1:], 'storage': os.environ.get('HPSEARCH_STORAGE'),"
        f" 'script': sys.stdin.read()}}, open({str(record)!r}, 'w'))\nprint('4242;cluster')\n"
    )
    (bin_ / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return record


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers: 0 is not a number of workers (a whole number >= 1)"),
        (["--workers", "2", "--time", "1h"], "--time: '1h' is not a Slurm time limit"),
        (["--workers", "2", "--gpus-per-worker", "-1"], "--gpus-per-worker: -1 is not a number of GPUs"),
        (["--workers", "2", "--storage", "sqlite:///x.db"], "storage: sqlite:///x.db is a SQLite file"),
        (["--workers", "2", "--storage", None], "is a SQLite file, which the cluster's nodes cannot share"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_submitted(
    make_study, spy_sbatch, capsys, monkeypatch, flags, message
):
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    if flags[-1] is None:  # no storage anywhere: the default, a SQLite file beside the study
        flags = flags[:-2]
    elif "--storage" not in flags:
        flags = [*flags, "--storage", URL]
    assert main(["launch", "slurm", str(make_study()), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: hpsearch launch slurm: ")
    assert not spy_sbatch.exists()


def test_without_sbatch_on_path_it_says_so(make_study, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["launch", "slurm", str(make_study()), "--workers", "2", "--storage", URL]) == 2
    err = capsys.readouterr().err
    assert err == "error: hpsearch launch slurm: sbatch is not on PATH: run it on a Slurm login node" + (
        " (--dry-run prints the script only)\n"
    )


def test_dry_run_prints_the_script_and_submits_nothing(make_study, spy_sbatch, capsys, monkeypatch):
    monkeypatch.setenv("HPSEARCH_STORAGE", URL)
    path = make_study()
    assert main(["launch", "slurm", str(path), "--workers", "3", "--set", "budget.n_trials=6", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --array=0-2" in out and f"worker {path.resolve()} --set=budget.n_trials=6" in out
    assert "s3cret-pw" not in out and not spy_sbatch.exists()


def test_submission_passes_the_storage_by_environment_and_prints_the_job(make_study, spy_sbatch, capsys, monkeypatch):
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    path = make_study()
    assert main(["launch", "slurm", str(path), "--workers", "2", "--storage", URL, "--partition", "gpu"]) == 0
    call = json.loads(spy_sbatch.read_text())
    assert call["args"] == ["--parsable"] and call["storage"] == URL
    assert "#SBATCH --partition=gpu" in call["script"] and "s3cret-pw" not in call["script"]
    out = capsys.readouterr().out
    assert out.startswith(
        "submitted Slurm job 4242: 2 worker(s) of study tiny (array 0-1) on postgresql://hpsearch:***@"
    )
    assert "squeue -j 4242" in out and "scancel 4242" in out and "s3cret-pw" not in out
    assert f"hpsearch status {path} --storage URL" in out  # status needs the URL given here, too


def test_with_the_storage_in_the_environment_status_needs_no_flag(make_study, spy_sbatch, capsys, monkeypatch):
    monkeypatch.setenv("HPSEARCH_STORAGE", URL)
    path = make_study()
    assert main(["launch", "slurm", str(path), "--workers", "1"]) == 0
    assert json.loads(spy_sbatch.read_text())["storage"] == URL
    assert f"watch it:  hpsearch status {path}   squeue -j 4242" in capsys.readouterr().out


def test_status_shows_the_slurm_task_of_running_trials():
    from hpsearch.results import status

    study = optuna.create_study()
    finished, running = study.ask(), study.ask()
    study.ask()  # running, not in Slurm
    finished.set_user_attr("slurm_job", "7_0")
    running.set_user_attr("slurm_job", "7_1")
    study.tell(finished, 0.5)
    assert [r["slurm_job"] for r in status.rows(study)] == ["7_0", "7_1", None]
    lines = status.table(study, "accuracy").splitlines()
    assert lines[2].split()[:2] == ["1", "RUNNING"] and lines[2].endswith("[slurm job 7_1]")
    assert "slurm" not in lines[1] and "slurm" not in lines[3]  # finished, or not run by Slurm


# --- a real cluster: munged, slurmctld and slurmd on this machine, a real PostgreSQL -------------------

SLOW = {"num_train_epochs": 8, "use_cpu": True}  # several seconds per trial: both tasks are mid-trial at once


class Array:
    """`hpsearch launch slurm` run against the test cluster, and what its tasks left in the storage."""

    def __init__(self, cluster, study: Path, url: str, cwd: Path, capsys, monkeypatch) -> None:
        self.cluster, self.study, self.url, self.cwd, self.capsys = cluster, study, url, cwd, capsys
        # The tasks inherit this environment (--export=ALL): the cluster, this checkout, offline hubs.
        for name, value in (("SLURM_CONF", str(cluster.conf)), ("PYTHONPATH", str(ROOT)), ("HF_HUB_OFFLINE", "1")):
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HPSEARCH_STORAGE", url)
        monkeypatch.chdir(cwd)
        self.env = dict(os.environ)

    def launch(self) -> str:
        """Submit in this process (its imports are done: quick); the job id."""
        flags = ["--workers", "2", "--time", "10:00", "--partition", "debug", "--sbatch-arg=--cpus-per-task=1"]
        assert main(["launch", "slurm", str(self.study), *flags]) == 0
        out = self.capsys.readouterr().out
        assert "s3cret-pw" not in out
        return out.split()[3].rstrip(":")  # "submitted Slurm job 12: ..."

    def queued(self, job: str) -> str:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], env=self.env, capture_output=True, text=True)
        return out.stdout.strip()

    def wait_done(self, job: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while self.queued(job):
            assert time.monotonic() < deadline, f"job {job} still queued:\n{self.queued(job)}\n{self.logs()}"
            time.sleep(1)

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="tiny", storage=self.url).trials
        except KeyError:  # the first task has not created the study yet
            return []

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()[-3000:]}" for p in sorted(self.cwd.glob("*.out")))


@pytest.mark.slurm
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_slurm_array_runs_the_sweep_survives_scancel_and_resumes(
    slurm_cluster, postgres_db, make_study, tmp_path, capsys, monkeypatch
):
    study = make_study(train=SLOW, evaluation={"every": 0.05})
    work = tmp_path / "slurm runs #1"  # sbatch splits #SBATCH lines at spaces and cuts them at a `#` unless quoted
    work.mkdir()
    array = Array(slurm_cluster, study, postgres_db, work, capsys, monkeypatch)
    job = array.launch()
    # Both tasks mid-trial: each has a RUNNING trial that names its task.
    deadline = time.monotonic() + 240
    while len(running := [t for t in array.trials() if t.state == States.RUNNING and "slurm_job" in t.user_attrs]) < 2:
        assert time.monotonic() < deadline and array.queued(job), f"never two running trials:\n{array.logs()}"
        time.sleep(0.5)
    assert {t.user_attrs["slurm_job"] for t in running} == {f"{job}_0", f"{job}_1"}
    # `hpsearch status` in this process too, while the trials still run.
    assert main(["status", str(array.study), "--storage", postgres_db, "--format", "json"]) == 0
    shown = {r["number"]: r["slurm_job"] for r in json.loads(capsys.readouterr().out)}
    assert {shown[t.number] for t in running} == {f"{job}_0", f"{job}_1"}
    assert main(["status", str(array.study), "--storage", postgres_db]) == 0
    table = capsys.readouterr().out
    assert any("RUNNING" in line and f"[slurm job {job}_" in line for line in table.splitlines()), table

    subprocess.run(["scancel", job], env=array.env, check=True)
    array.wait_done(job, timeout=90)  # KillWait is 30 s: a worker that ignored SIGTERM would be killed
    after = array.trials()
    assert not [t.number for t in after if t.state == States.RUNNING], array.logs()
    interrupted = {t.number for t in after if t.user_attrs.get("interrupted")}
    assert {t.number for t in running} <= interrupted, array.logs()  # SIGTERM reached each worker
    assert {t.user_attrs.get("retry_of") for t in after if t.state == States.WAITING} >= interrupted
    for index in (0, 1):  # each worker stopped through its interrupt, not killed after Slurm's KillWait
        log = (work / f"hpsearch-tiny-{job}_{index}.out").read_text()
        assert "interrupted: run the same command again to resume" in log, log

    again = array.launch()  # the same command resumes the study
    assert again != job
    array.wait_done(again)
    final = array.trials()
    done = [t for t in final if t.state.is_finished() and not t.user_attrs.get("interrupted")]
    assert [t.state for t in done] == [States.COMPLETE, States.COMPLETE], array.logs()  # budget: 2 trials
    assert not [t for t in final if t.state in (States.RUNNING, States.WAITING)], array.logs()
    assert {t.user_attrs.get("retry_of") for t in done} == interrupted  # the interrupted configs, re-run
    assert {t.user_attrs["slurm_job"] for t in done} == {f"{again}_0", f"{again}_1"}, array.logs()
