"""`run --enqueue FILE` and `run --warm-start OTHER`: configs queued before the sampler draws.

Clipping and ranking are tested directly; the rest through the real CLI, with real sweeps of the
tiny BERT recorded in a real SQLite file.
"""

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpsearch import cli, errors
from hpsearch.orchestration import enqueue, warm_start
from hpsearch.spec import ParamSpec, load_spec

COMPLETE = TrialState.COMPLETE


def load(path, name="tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db")


def run(path, *extra) -> int:
    return cli.main(["run", str(path), *extra])


# --------------------------------------------------------------------------------------------
# clip


def test_clip_float_range_and_log_range():
    lr = ParamSpec("learning_rate", "float", 1e-3, 1e-2, log=True)
    assert enqueue.clip(5e-2, lr) == 1e-2
    assert enqueue.clip(1e-4, lr) == 1e-3
    assert enqueue.clip(3e-3, lr) == 3e-3
    assert enqueue.clip(0, lr) == 1e-3 and isinstance(enqueue.clip(0, lr), float)
    wd = ParamSpec("weight_decay", "float", 0.0, 0.3)
    assert enqueue.clip(1, wd) == 0.3 and isinstance(enqueue.clip(1, wd), float)
    for bad in ("1e-3", True, None, float("nan")):
        with pytest.raises(ValueError):
            enqueue.clip(bad, lr)


def test_clip_float_step_snaps_to_the_nearest_point_inside():
    warmup = ParamSpec("warmup_steps", "float", 0.0, 0.2, step=0.05)
    assert enqueue.clip(0.12, warmup) == 0.1
    assert enqueue.clip(0.13, warmup) == 0.15
    assert enqueue.clip(0.15000000000000002, warmup) == 0.15
    assert enqueue.clip(0.5, warmup) == 0.2
    assert enqueue.clip(-1, warmup) == 0.0


def test_clip_int_rounds_clips_and_snaps():
    accumulation = ParamSpec("gradient_accumulation_steps", "int", 1, 8)
    assert enqueue.clip(3.6, accumulation) == 4 and isinstance(enqueue.clip(3.6, accumulation), int)
    assert enqueue.clip(20, accumulation) == 8
    assert enqueue.clip(0, accumulation) == 1
    batch = ParamSpec("per_device_train_batch_size", "int", 8, 64, step=8)
    assert enqueue.clip(19, batch) == 16
    assert enqueue.clip(21, batch) == 24
    assert enqueue.clip(100, batch) == 64
    assert enqueue.clip(2, batch) == 8
    logged = ParamSpec("per_device_train_batch_size", "int", 4, 256, log=True)
    assert enqueue.clip(1024, logged) == 256
    assert enqueue.clip(1, logged) == 4
    assert enqueue.clip(48, logged) == 48


def test_clip_categorical_keeps_only_offered_choices():
    batch = ParamSpec("per_device_train_batch_size", "categorical", choices=(8, 16))
    assert enqueue.clip(16, batch) == 16
    assert enqueue.clip(16.0, batch) == 16 and isinstance(enqueue.clip(16.0, batch), int)
    with pytest.raises(ValueError, match="not one of the searched choices: 8, 16"):
        enqueue.clip(32, batch)
    with pytest.raises(ValueError):
        enqueue.clip(True, ParamSpec("x", "categorical", choices=(1, 2)))
    optim = ParamSpec("optim", "categorical", choices=("adamw_torch", "sgd"))
    assert enqueue.clip("sgd", optim) == "sgd"
    with pytest.raises(ValueError):
        enqueue.clip("adafactor", optim)


# --------------------------------------------------------------------------------------------
# warm_configs and the not-found message


def test_warm_configs_rank_by_the_other_studys_direction(make_study):
    spec = load_spec(make_study())
    other = optuna.create_study(direction="minimize")
    lr = FloatDistribution(1e-4, 1e-1, log=True)
    for value, rate in [(0.5, 2e-3), (0.2, 3e-3), (0.9, 4e-3), (0.2, 5e-3)]:
        other.add_trial(create_trial(value=value, params={"learning_rate": rate}, distributions={"learning_rate": lr}))
    other.add_trial(
        create_trial(state=TrialState.PRUNED, params={"learning_rate": 6e-3}, distributions={"learning_rate": lr})
    )
    picked = warm_start.warm_configs(other.trials, "minimize", spec, 3)
    assert picked == [(1, {"learning_rate": 3e-3}), (3, {"learning_rate": 5e-3}), (0, {"learning_rate": 2e-3})]
    picked = warm_start.warm_configs(other.trials, optuna.study.StudyDirection.MAXIMIZE, spec, 1)
    assert picked == [(2, {"learning_rate": 4e-3})]


def test_the_missing_study_message_never_shows_a_password():
    # errors.missing_study hides the password itself: no caller can print it by passing the raw URL.
    message = str(errors.missing_study("nope", "postgresql://hpsearch:s3cret@db.example.org:5432/sweeps", ["a", "b"]))
    assert (
        message == "no study named 'nope' in postgresql://hpsearch:***@db.example.org:5432/sweeps (studies there: a, b)"
    )
    assert "s3cret" not in message
    assert str(errors.missing_study("x", "sqlite:///t.db", [])).endswith("(studies there: none)")


# --------------------------------------------------------------------------------------------
# --enqueue FILE: bad input exits 2 with one line and writes nothing

SEARCH = {
    "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "per_device_train_batch_size": [8, 16],
    "gradient_accumulation_steps": {"type": "int", "low": 1, "high": 4},
    "warmup_steps": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.05},
}
SEARCHED = "searched: learning_rate, per_device_train_batch_size, gradient_accumulation_steps, warmup_steps"
SHAPE = "must be a list of {param: value} mappings, or a mapping with configs: [...]"

BAD_CONFIGS = [
    # id, file name, text, what follows "error: FILE: "
    (
        "outside-range",
        "c.yaml",
        "- {learning_rate: 9.0}",
        "configs[0].learning_rate: 9.0 is outside the searched range [0.001, 0.01]",
    ),
    (
        "third-of-configs",
        "c.yaml",
        "configs:\n- {learning_rate: 2e-3}\n- {learning_rate: 3e-3}\n- {learning_rate: 1e-4}",
        "configs[2].learning_rate: 0.0001 is outside the searched range [0.001, 0.01]",
    ),
    ("unknown-param", "c.yaml", "- {lr: 1e-3}", f"configs[0].lr: is not a searched param; {SEARCHED}"),
    (
        "fixed-param",
        "c.yaml",
        "- {num_train_epochs: 3}",
        f"configs[0].num_train_epochs: is fixed in train, not searched; {SEARCHED}",
    ),
    (
        "not-a-choice",
        "c.yaml",
        "- {per_device_train_batch_size: 12}",
        "configs[0].per_device_train_batch_size: 12 is not one of the searched choices: 8, 16",
    ),
    (
        "int-param",
        "c.json",
        '[{"gradient_accumulation_steps": 2.5}]',
        "configs[0].gradient_accumulation_steps: must be an int, got 2.5",
    ),
    (
        "int-range",
        "c.json",
        '[{"gradient_accumulation_steps": 5}]',
        "configs[0].gradient_accumulation_steps: 5 is outside the searched range [1, 4]",
    ),
    (
        "off-step",
        "c.yaml",
        "- {warmup_steps: 0.07}",
        "configs[0].warmup_steps: 0.07 is not on the searched step 0.05 from 0.0; nearest: 0.05, 0.1",
    ),
    ("not-a-number", "c.yaml", "- {learning_rate: fast}", "configs[0].learning_rate: must be a number, got 'fast'"),
    ("bool-for-float", "c.yaml", "- {learning_rate: true}", "configs[0].learning_rate: must be a number, got True"),
    ("entry-not-mapping", "c.yaml", "- 0.001", "configs[0]: must be a mapping of searched param: value, got 0.001"),
    ("empty-entry", "c.yaml", "- {}", "configs[0]: must be a mapping of searched param: value, got an empty mapping"),
    ("flat-mapping", "c.yaml", "learning_rate: 1e-3", f"learning_rate: unknown key; the file {SHAPE}"),
    ("scalar", "c.yaml", "42", SHAPE),
    ("empty-file", "c.yaml", "", f"is empty; it {SHAPE}"),
    ("configs-not-a-list", "c.yaml", "configs: 3", "configs: must be a list of {param: value} mappings, got 3"),
    ("empty-list", "c.json", "[]", "configs: is empty; give at least one config"),
    (
        "malformed-yaml",
        "c.yaml",
        "- {learning_rate: 1e-3",
        "malformed YAML: line 1, column 23: expected ',' or '}', but got '<stream end>'",
    ),
    ("malformed-json", "c.json", '[{"learning_rate": }]', "malformed JSON: line 1, column 20: Expecting value"),
    ("deep-json", "c.json", "[" * 100_000 + "]" * 100_000, "nested too deeply to be a list of configs"),
    # json.loads kept the last of two keys silently; a YAML configs file refused it already
    (
        "key-twice-json",
        "c.json",
        '[{"learning_rate": 1e-3, "learning_rate": 2e-3}]',
        "learning_rate: given twice in one object; give it once",
    ),
    ("deep-yaml", "c.yaml", "[" * 5_000 + "]" * 5_000, "nested too deeply to be a list of configs"),
    (
        "huge-int-json",
        "c.json",
        '[{"gradient_accumulation_steps": ' + "9" * 5000 + "}]",
        "malformed JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits",
    ),
    (
        "nul-bytes",
        "c.yaml",
        "- {learning_rate: 1e-3}\0",
        "is not a text file (it holds NUL bytes); a configs file is UTF-8 YAML or JSON",
    ),
]


@pytest.mark.parametrize("name,text,expected", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configs_exit_2_naming_file_and_config(make_study, tmp_path, capsys, name, text, expected):
    path = make_study(search=SEARCH)
    configs = tmp_path / name
    configs.write_text(text)
    assert run(path, "--enqueue", str(configs)) == 2
    assert capsys.readouterr().err.strip() == f"error: {configs}: {expected}"
    assert not (tmp_path / "tiny.db").exists()


def test_every_bad_config_of_a_file_is_said_at_once(make_study, tmp_path, capsys):
    path = make_study(search=SEARCH)
    configs = tmp_path / "c.yaml"
    configs.write_text("- {learning_rate: 9.0}\n- {learning_rate: 2e-3}\n- {lr: 1e-3, learning_rate: 1e-4}\n")
    assert run(path, "--enqueue", str(configs)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {configs}: configs[0].learning_rate: 9.0 is outside the searched range [0.001, 0.01]",
        f"{configs}: configs[2].lr: is not a searched param; {SEARCHED}",
        f"{configs}: configs[2].learning_rate: 0.0001 is outside the searched range [0.001, 0.01]",
    ]
    assert not (tmp_path / "tiny.db").exists()


def test_a_missing_configs_file_exits_2(make_study, tmp_path, capsys):
    path = make_study()
    assert run(path, "--enqueue", str(tmp_path / "nope.yaml")) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: --enqueue: {tmp_path / 'nope.yaml'}: no such file"
    assert not (tmp_path / "tiny.db").exists()


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--enqueue", "CONFIGS"], "--enqueue: a grid study already runs every point of its grid"),
        (["--warm-start", "other"], "--warm-start: a grid study already runs every point of its grid"),
    ],
)
def test_a_grid_study_refuses_queued_configs(make_study, tmp_path, capsys, flags, expected):
    path = make_study(sampler={"type": "grid"}, search={"learning_rate": [1e-3, 5e-3]}, budget={})
    (tmp_path / "configs.yaml").write_text("- {learning_rate: 1e-3}")
    flags = [str(tmp_path / "configs.yaml") if f == "CONFIGS" else f for f in flags]
    assert run(path, *flags) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: {expected}"
    assert not (tmp_path / "tiny.db").exists()


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--warm-start-top", "3"], "--warm-start-top: is used only with --warm-start STUDY"),
        (["--warm-start-storage", "sqlite:///x.db"], "--warm-start-storage: is used only with --warm-start STUDY"),
        (["--warm-start", "other", "--warm-start-top", "0"], "--warm-start-top: must be >= 1, got 0"),
    ],
)
def test_warm_start_options_are_checked(make_study, tmp_path, capsys, flags, expected):
    path = make_study()
    assert run(path, *flags) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: {expected}"
    assert not (tmp_path / "tiny.db").exists()


@pytest.mark.parametrize("flag", ["--enqueue", "--warm-start"])
def test_only_run_takes_them_not_worker(make_study, flag):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["worker", str(make_study()), flag, "x"])
    assert exit_.value.code == 2


# --------------------------------------------------------------------------------------------
# --warm-start OTHER: a study that is not there, or has nothing to give


def test_an_unknown_warm_start_study_exits_2_listing_the_studies(make_study, tmp_path, capsys):
    path = make_study()
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    for name in ("b", "a"):
        optuna.create_study(study_name=name, storage=url)
    assert run(path, "--warm-start", "nope") == 2
    expected = f"error: --warm-start nope: no study named 'nope' in {url} (studies there: a, b)"
    assert capsys.readouterr().err.strip() == expected
    assert sorted(optuna.get_all_study_names(url)) == ["a", "b"]  # the run created nothing


def test_a_warm_start_from_a_storage_that_is_not_there_names_the_flag(make_study, tmp_path, capsys):
    path = make_study()
    assert run(path, "--warm-start", "nosuchstudy") == 2
    db = tmp_path / "tiny.db"
    assert (
        capsys.readouterr().err.strip()
        == f"error: --warm-start nosuchstudy: no study database at {db} (is nosuchstudy in another storage?"
        " give --warm-start-storage URL)"
    )
    assert not db.exists()


def test_a_warm_start_study_without_completed_trials_exits_2(make_study, tmp_path, capsys):
    path = make_study()
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    other = optuna.create_study(study_name="other", storage=url)
    other.add_trial(create_trial(state=TrialState.PRUNED))
    other.add_trial(create_trial(state=TrialState.FAIL))
    other.add_trial(create_trial(state=TrialState.FAIL))
    assert run(path, "--warm-start", "other") == 2
    expected = (
        f"error: --warm-start other: study 'other' in {url} has no completed trial to warm-start from"
        " (trials: 2 fail, 1 pruned)"
    )
    assert capsys.readouterr().err.strip() == expected
    assert optuna.get_all_study_names(url) == ["other"]


# --------------------------------------------------------------------------------------------
# Real sweeps


@pytest.mark.slow
def test_enqueued_configs_run_first_within_the_budget_and_are_queued_once(make_study, tmp_path, capsys):
    path = make_study(budget={"n_trials": 2})
    configs = tmp_path / "bert-grid.yaml"
    configs.write_text(
        "configs:\n"
        "  - {learning_rate: 2e-3, per_device_train_batch_size: 16}\n"
        "  - {learning_rate: 5e-3}\n"
        "  - {per_device_train_batch_size: 8}\n"
    )
    assert run(path, "--enqueue", str(configs)) == 0
    # queued trials count toward the budget: the third config is not queued yet
    assert f"\nenqueued 2 configs from {configs} (1 left out, beyond budget.n_trials=2)\n" in capsys.readouterr().out
    first, second = load(path).trials
    assert first.state == second.state == COMPLETE
    assert first.params == {"learning_rate": 2e-3, "per_device_train_batch_size": 16}
    assert second.params["learning_rate"] == 5e-3
    assert second.params["per_device_train_batch_size"] in (8, 16)  # drawn by the sampler
    assert first.user_attrs["enqueued_from"] == second.user_attrs["enqueued_from"] == str(configs)

    # a larger budget queues the rest, and nothing twice
    assert run(path, "--enqueue", str(configs), "--n-trials", "3") == 0
    assert f"\nenqueued 1 config from {configs} (2 already queued or run)\n" in capsys.readouterr().out
    third = load(path).trials[2]
    assert third.state == COMPLETE and third.params["per_device_train_batch_size"] == 8
    assert third.user_attrs["enqueued_from"] == str(configs)

    assert run(path, "--enqueue", str(configs), "--n-trials", "3") == 0
    assert f"\nenqueued 0 configs from {configs} (3 already queued or run)\n" in capsys.readouterr().out
    assert len(load(path).trials) == 3


def add_source_study(url: str) -> None:
    """A study named `source`, made with Optuna alone, whose space is wider than tiny's and differs."""
    source = optuna.create_study(study_name="source", storage=url, direction="maximize")
    distributions = {
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "per_device_train_batch_size": CategoricalDistribution([8, 16, 32]),
        "weight_decay": FloatDistribution(0.0, 0.1),  # tiny does not search it
    }

    def add(value, lr, batch, state=COMPLETE):
        params = {"learning_rate": lr, "per_device_train_batch_size": batch, "weight_decay": 0.01}
        source.add_trial(create_trial(state=state, value=value, params=params, distributions=distributions))

    add(0.1, 1e-3, 8)  # 0: complete, but not in the top 4
    add(0.8, 2e-3, 16)  # 1: second best, fits as it is
    add(0.9, 5e-2, 32)  # 2: best; learning rate above tiny's range, batch size not among its choices
    add(None, 1e-2, 8, state=TrialState.PRUNED)  # 3
    add(0.7, 3e-2, 32)  # 4: after clipping the same as 2: dropped
    add(None, 1e-2, 16, state=TrialState.FAIL)  # 5
    add(0.6, 4e-3, 8)  # 6


@pytest.mark.slow
def test_warm_start_runs_the_best_configs_clipped_into_this_space(make_study, tmp_path, capsys):
    path = make_study(budget={"n_trials": 3})
    add_source_study(f"sqlite:///{tmp_path / 'tiny.db'}")
    warm = ["--warm-start", "source", "--warm-start-top", "4"]
    assert run(path, *warm) == 0
    top = "top 4 of 5 completed; 1 dropped as identical after clipping"
    assert f"\nwarm start: enqueued 3 configs from study source ({top})\n" in capsys.readouterr().out
    first, second, third = load(path).trials
    assert first.state == second.state == third.state == COMPLETE
    assert first.params["learning_rate"] == 1e-2  # 5e-2 clipped to the range's top
    assert first.params["per_device_train_batch_size"] in (8, 16)  # 32 is not a choice: drawn by the sampler
    assert second.params == {"learning_rate": 2e-3, "per_device_train_batch_size": 16}
    assert third.params == {"learning_rate": 4e-3, "per_device_train_batch_size": 8}
    assert [t.user_attrs["warm_start"] for t in (first, second, third)] == ["source#2", "source#1", "source#6"]

    # Both flags, room for one more trial: the file's config comes first, nothing is queued twice.
    configs = tmp_path / "configs.json"
    configs.write_text('[{"learning_rate": 7e-3, "per_device_train_batch_size": 8}, {"learning_rate": 8e-3}]')
    assert run(path, *warm, "--enqueue", str(configs), "--n-trials", "4") == 0
    out = capsys.readouterr().out
    assert f"\nenqueued 1 config from {configs} (1 left out, beyond budget.n_trials=4)\n" in out
    assert f"\nwarm start: enqueued 0 configs from study source ({top}; 3 already queued or run)\n" in out
    trials = load(path).trials
    assert len(trials) == 4 and trials[3].state == COMPLETE
    assert trials[3].params == {"learning_rate": 7e-3, "per_device_train_batch_size": 8}
    assert trials[3].user_attrs["enqueued_from"] == str(configs) and "warm_start" not in trials[3].user_attrs


def test_warm_start_from_another_storage_is_planned_without_writing(make_study, tmp_path):
    """`warm_start.plan` reads the other study and checks everything; the run's storage stays untouched."""
    path = make_study()
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    add_source_study(elsewhere)
    (batch,) = warm_start.plan(load_spec(path), warm_start_from="source", top=2, warm_storage=elsewhere)
    assert batch.configs == [{"learning_rate": 1e-2}, {"learning_rate": 2e-3, "per_device_train_batch_size": 16}]
    assert batch.attrs == [{"warm_start": "source#2"}, {"warm_start": "source#1"}]
    assert batch.notes == ("top 2 of 5 completed",)
    assert not (tmp_path / "tiny.db").exists()


def test_a_warm_start_study_sharing_no_param_exits_2(make_study, tmp_path, capsys):
    path = make_study()
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    other = optuna.create_study(study_name="other", storage=url, direction="maximize")
    other.add_trial(create_trial(value=0.5, params={"x": 1.0}, distributions={"x": FloatDistribution(0, 2)}))
    assert run(path, "--warm-start", "other") == 2
    expected = (
        f"error: {path}: --warm-start: the best trials of study 'other' share no usable param with this study's "
        "search (other: x; here: learning_rate, per_device_train_batch_size)"
    )
    assert capsys.readouterr().err.strip() == expected
    assert optuna.get_all_study_names(url) == ["other"]
