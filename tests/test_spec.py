"""spec.py: reading, overrides, and the error message for each kind of bad input."""

from pathlib import Path

import pytest

from hpsearch.errors import shown
from hpsearch.spec import SpecError, load_spec, parse_value, resolve_path

from .conftest import DELETE


def test_reads_a_study_file(make_study):
    spec = load_spec(make_study())
    assert spec.name == "tiny"
    assert spec.objective.direction == "maximize"
    assert spec.objective.key == "eval_accuracy"
    lr = spec.search["learning_rate"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-3, 1e-2, True)
    assert spec.search["per_device_train_batch_size"].choices == (8, 16)
    assert spec.data.eval_split == "validation"
    assert spec.train["num_train_epochs"] == 2.0


def test_loss_objective_defaults_to_minimize(make_study):
    assert load_spec(make_study(objective={"metric": "loss"})).objective.direction == "minimize"


def test_scientific_notation_without_dot_is_a_float(tmp_path, make_study):
    path = make_study()
    path.write_text(path.read_text().replace("low: 0.001", "low: 1e-3"))
    assert load_spec(path).search["learning_rate"].low == 1e-3


def test_overrides_set_nested_keys_with_parsed_types(make_study):
    spec = load_spec(
        make_study(),
        ["sampler.type=tpe", "sampler.seed=7", "search.learning_rate.low=1e-4", "train.max_grad_norm=0.5"],
    )
    assert spec.sampler.type == "tpe" and spec.sampler.options == {
        "seed": 7,
        "n_startup_trials": 5,
        "multivariate": True,
    }
    assert spec.search["learning_rate"].low == 1e-4
    assert spec.train["max_grad_norm"] == 0.5


def test_a_new_study_samples_with_the_measured_tpe_defaults(make_study):
    """5 random startup trials (not Optuna's 10: the replays of both recorded grids over 100 seeds), the
    parameters modelled jointly; stored with the spec, so a study records what it sampled with."""
    from hpsearch.search.samplers import build_sampler

    spec = load_spec(make_study(sampler={}))
    sampler = build_sampler(spec)
    assert (sampler._n_startup_trials, sampler._multivariate) == (5, True)
    assert spec.to_dict()["sampler"] == {"type": "tpe", "n_startup_trials": 5, "multivariate": True}
    sampler = build_sampler(load_spec(make_study(sampler={"n_startup_trials": 10, "multivariate": False})))
    assert (sampler._n_startup_trials, sampler._multivariate) == (10, False)


def test_a_new_gp_study_starts_with_the_measured_two_random_trials_and_other_samplers_with_optunas(make_study):
    """gp: 2 random trials, not Optuna's 10 (the replays over 40 seeds); qmc and nsga2 options left unset
    take Optuna's own defaults, given ones are passed on."""
    from hpsearch.search.samplers import build_sampler

    spec = load_spec(make_study(sampler={"type": "gp"}))
    assert build_sampler(spec)._n_startup_trials == 2
    assert spec.to_dict()["sampler"] == {"type": "gp", "n_startup_trials": 2}
    assert build_sampler(load_spec(make_study(sampler={"type": "gp", "n_startup_trials": 10})))._n_startup_trials == 10
    qmc = build_sampler(load_spec(make_study(sampler={"type": "qmc"})))
    assert (qmc._qmc_type, qmc._scramble) == ("sobol", False)
    qmc = build_sampler(load_spec(make_study(sampler={"type": "qmc", "qmc_type": "halton", "scramble": True})))
    assert (qmc._qmc_type, qmc._scramble) == ("halton", True)


def test_parse_value():
    assert parse_value("3") == 3
    assert parse_value("1e-4") == 1e-4
    assert parse_value("true") is True
    assert parse_value("[8, 16]") == [8, 16]
    assert parse_value("sqlite:///x.db") == "sqlite:///x.db"
    assert parse_value("!!int ten") == "!!int ten"  # a string, refused where a number is wanted


def test_data_path_relative_to_study_file_but_set_paths_relative_to_cwd(tmp_path, make_study, monkeypatch):
    path = make_study()
    text = path.read_text()
    path.write_text(text.replace(str(tmp_path / "intents"), "intents"))
    monkeypatch.chdir(Path("/"))
    assert load_spec(path).data.path == str(tmp_path / "intents")
    monkeypatch.chdir(tmp_path.parent)
    relative = f"{tmp_path.name}/intents"
    assert load_spec(path, [f"data.path={relative}"]).data.path == str(tmp_path / "intents")


@pytest.mark.parametrize(
    "value, local",
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", False),
        ("meta-llama/Llama-3.1-8B", False),
        ("gpt2", False),
        ("train.csv", True),
        ("data/rows.jsonl", True),
        ("./folder", True),
        ("a/b/c", True),
    ],
)
def test_hub_ids_with_dots_stay_hub_ids_and_files_are_paths(tmp_path, value, local):
    resolved = resolve_path(value, "model.name_or_path", tmp_path / "study.yaml", set())
    assert resolved == (str((tmp_path / value).resolve()) if local else value)


BAD = [
    # (changes, the field the message must name, a word of what is allowed)
    (
        {"colour": "red"},
        "colour",
        "allowed: augmentation, budget, confirm, data, divergence, early_stopping, evaluation, finetune, generation,"
        " heartbeat, lora, model, name",
    ),
    ({"sampler__typ": "tpe"}, "sampler.typ", None),
    ({"data__txt_column": "x"}, "data.txt_column", "allowed"),
    ({"budget__n_trials": "ten"}, "budget.n_trials", "must be int"),
    ({"search__learning_rate__low": 0.1}, "search.learning_rate.low", "below high"),
    (
        {"search__learning_rate": {"type": "float", "low": 0.0, "high": 1e-2, "log": True}},
        "search.learning_rate.low",
        "log",
    ),
    ({"search__per_device_train_batch_size": []}, "search.per_device_train_batch_size.choices", "empty"),
    ({"search__optim": ["adamw_torch", "adamw_turbo"]}, "search.optim", "adamw_torch_fused"),
    ({"train__lr_scheduler_type": "zigzag"}, "train.lr_scheduler_type", "cosine"),
    # Every field transformers annotates with an Enum takes its values only, checked with the rest of the keys.
    ({"train__save_strategy": "sometimes"}, "train.save_strategy", "allowed: no, steps, epoch, best"),
    ({"search__logging_strategy": ["steps", "often"]}, "search.logging_strategy", "allowed: no, steps, epoch"),
    ({"train__warmup_ratio": 0.1}, "train.warmup_ratio", "warmup_steps"),
    # one argument under its old and its new name: transformers 5.25 would take the new one, drop the old
    (
        {"train__gradient_checkpointing": True, "train__activation_checkpointing": False},
        "train.gradient_checkpointing",
        "is the old name of activation_checkpointing, which is set too (train.activation_checkpointing)",
    ),
    (
        {"train__activation_checkpointing": True, "search__gradient_checkpointing": [True, False]},
        "search.gradient_checkpointing",
        "is the old name of activation_checkpointing, which is set too (train.activation_checkpointing)",
    ),
    ({"train__output_dir": "x"}, "train.output_dir", "hpsearch"),
    # Keys hpsearch sets itself, and its own settings, which are not TrainingArguments (lora_r was a KeyError).
    ({"train__eval_steps": 0.25}, "train.eval_steps", "cannot be set; evaluations are scheduled on training samples"),
    ({"search__eval_delay": [0, 1]}, "search.eval_delay", "cannot be searched; evaluations are scheduled on"),
    ({"train__lora_r": 8}, "train.lora_r", "not a TrainingArguments field but one of hpsearch's own settings"),
    ({"train__learning_rate": 0.1}, "train.learning_rate", "either searched or fixed"),
    ({"task": "translation"}, "task", "sequence-classification"),
    ({"sampler__type": "bayes"}, "sampler.type", "tpe"),
    ({"pruner__type": "asha"}, "pruner.type", "hyperband"),
    ({"objective__metric": "bleu"}, "objective.metric", "f1_macro"),
    ({"budget": DELETE}, "budget", "n_trials"),
    ({"search__learning_rate__type": "number"}, "search.learning_rate.type", "float"),
    ({"search": {}}, "search", "at least one"),
    ({"name": "my study!"}, "name", "letters"),
    ({"data__eval_fraction": 0.2, "data__eval_split": "validation"}, "data.eval_fraction", "not both"),
    ({"train__num_train_epochs": "three"}, "train.num_train_epochs", "must be float, got 'three'"),
    ({"train__use_cpu": "yes"}, "train.use_cpu", "must be bool"),
    # A list's items where text is expected: taken whole before (transformers would meet them as [{'a': 1}])
    ({"train__report_to": [{"a": 1}]}, "train.report_to", "must be list of str or null or str, got [{'a': 1}]"),
    ({"train__label_names": [["x"]]}, "train.label_names", "must be list of str or null, got [['x']]"),
    (
        {"search__per_device_train_batch_size": {"type": "float", "low": 8.0, "high": 32.0}},
        "search.per_device_train_batch_size",
        "a float range (8.0 to 32.0) is not allowed; per_device_train_batch_size takes int",
    ),
    ({"sampler__type": "grid", "budget": {}}, "search.learning_rate", "discrete"),
    ({"pruner": {"type": "percentile"}}, "pruner.percentile", "is required"),
    ({"divergence": {"loss_factor": 0.5}}, "divergence.loss_factor", "must be > 1"),
    ({"divergence": {"factor": 3}}, "divergence.factor", "allowed: enabled, loss_factor"),
    ({"heartbeat": {"interval": 10, "grace_period": 5}}, "heartbeat.grace_period", "longer than heartbeat.interval"),
    # Seeds numpy refuses (set_seed and the subsampling would fail in the trial, not here).
    ({"sampler__seed": -1}, "sampler.seed", "-1 is not allowed; a whole number in [0, 4294967295]"),
    ({"data__seed": 2**32}, "data.seed", "4294967296 is not allowed; a whole number in [0, 4294967295]"),
    ({"evaluation": {"subsample": 10, "seed": -3}}, "evaluation.seed", "a whole number in [0, 4294967295]"),
    ({"train__seed": -1}, "train.seed", "-1 is not allowed; a whole number in [0, 4294967295]"),
    (
        {"search__learning_rate": {"type": "float", "low": 0.1, "high": 0.3, "step": 1e-320}},
        "search.learning_rate.step",
        "1e-320 is too small",
    ),
    ({"search__weight_decay": [0, 0.0]}, "search.weight_decay.choices", "lists a choice twice (0 and 0.0)"),
    (
        {"pruner": {"type": "hyperband", "min_resource": 5000, "max_resource": 100}},
        "pruner.min_resource",
        "5000 is not allowed; at most max_resource (100)",
    ),
    (
        {"search__gradient_accumulation_steps": {"low": 1, "high": 4.0}},
        "search.gradient_accumulation_steps",
        "a float range (1 to 4.0) is not allowed; gradient_accumulation_steps takes int: give int bounds",
    ),
    ({"search__learnin_rate": [1e-3, 1e-2]}, "search.learnin_rate", "unknown key (did you mean learning_rate?)"),
    ({"search__lora_rr": [8, 16]}, "search.lora_rr", "unknown key (did you mean lora_r?)"),  # a setting, searched
    # The closest name is one the section refuses: why, not "did you mean" a key that would be refused next
    ({"train__lora_rr": 8}, "train.lora_rr", "unknown key (lora_r, the closest, not a TrainingArguments field but"),
    ({"train__eval_step": 8}, "train.eval_step", "unknown key (eval_steps, the closest, cannot be set; evaluations"),
    # A long value is quoted cut to 60 characters, as everywhere else (it was quoted whole: a 5,000-character line)
    ({"data__max_length": "x" * 5000}, "data.max_length", "must be int, got '" + "x" * 56 + "..."),
    ({"task": "t" * 5000}, "task", "'" + "t" * 56 + "... is not allowed; allowed: "),
    # NAME.db beside the study file: a longer name was 'error: OSError: File name too long' from validate and run
    ({"name": "n" * 201}, "name", "'" + "n" * 56 + "...: use at most 200 letters, digits"),
    # A name longer than the file system takes (ENAMETOOLONG) was an OSError from the path lookup.
    ({"data__path": "d" * 300}, "data.path", "cannot be looked up (File name too long); give a local path or a hub"),
    ({"model__name_or_path": "m" * 300}, "model.name_or_path", "cannot be looked up (File name too long)"),
    # Counts and seconds beyond what later code holds (Optuna's trial numbers, a C int, a thread's wait): refused
    # here, not when a trial meets them
    ({"budget__n_trials": 2**63}, "budget.n_trials", "9223372036854775808 is not allowed; at most 2147483647"),
    ({"confirm": {"top_k": 2**31}}, "confirm.top_k", "2147483648 is not allowed; at most 2147483647"),
    ({"confirm": {"seeds": 2**63}}, "confirm.seeds", "9223372036854775808 is not allowed; at most 2147483647"),
    ({"resources": {"devices_per_trial": 2**63}}, "resources.devices_per_trial", "is not allowed; at most 2147483647"),
    ({"heartbeat": {"grace_period": 2**63}}, "heartbeat.grace_period", "is not allowed; at most 9223372036"),
    ({"heartbeat": {"interval": 2**40, "grace_period": 2**41}}, "heartbeat.interval", "at most 9223372036"),
    # 1e308 epochs times the train rows is no number of samples: an OverflowError in every trial
    (
        {"train__num_train_epochs": 1e308},
        "train.num_train_epochs",
        "1e+308 is not allowed; num_train_epochs must be at most 9223372036854775807",
    ),
    ({"search__num_train_epochs": [1, 1e300]}, "search.num_train_epochs", "must be at most 9223372036854775807"),
    # Steps, batches and lengths held in 64-bit integers. Each failed later: 10**30 steps hung a trial evaluated every
    # so many samples before its first step; a batch above sys.maxsize was a ValueError from islice in every trial;
    # a length above 2**64-1 an OverflowError (a traceback) from validate, for a model without position embeddings
    (
        {"train__max_steps": 10**30},
        "train.max_steps",
        "10" + "0" * 29 + " is not allowed; max_steps must be at most 92",
    ),
    (
        {"search__max_steps": {"low": 1, "high": 2**63}},
        "search.max_steps",
        "max_steps must be at most 9223372036854775807",
    ),
    ({"train__per_device_train_batch_size": 2**63}, "train.per_device_train_batch_size", "must be at most 92233720"),
    ({"search__per_device_eval_batch_size": [8, 10**30]}, "search.per_device_eval_batch_size", "must be at most 922"),
    ({"data__max_length": 10**30}, "data.max_length", "10" + "0" * 29 + " is not allowed; at most 9223372036854775807"),
    ({"data__max_target_length": 2**64}, "data.max_target_length", "is not allowed; at most 9223372036854775807"),
    # torch's DataLoader refused it, after the model and the data had loaded
    ({"train__dataloader_num_workers": -1}, "train.dataloader_num_workers", "-1 is not allowed; dataloader_num_wo"),
    # An integer no float holds, where a float is read: float() raised OverflowError, a traceback
    ({"search__learning_rate__high": 10**400}, "search.learning_rate.high", "is not allowed; a finite number"),
    ({"train__num_train_epochs": 10**400}, "train.num_train_epochs", "is not allowed; a finite number"),
    ({"evaluation__every": 10**400}, "evaluation.every", "is not allowed; a finite number"),
    ({"search__weight_decay": [0, 10**400]}, "search.weight_decay", "is not allowed; a finite number"),
]


def test_steps_batches_and_lengths_up_to_the_64_bit_bound_are_taken(make_study):
    """The bound is no lower than what later code holds: 2**63-1 steps, train rows per batch (a batch of the whole
    split) or tokens are taken (each trained, by hand, on the tiny model and a T5 without position embeddings)."""
    most = 2**63 - 1
    changes = {"max_steps": most, "per_device_train_batch_size": most}
    spec = load_spec(make_study(train={"use_cpu": True, **changes}, search__per_device_train_batch_size=DELETE))
    assert {k: spec.train[k] for k in changes} == changes
    assert load_spec(make_study(data__max_length=most)).data.max_length == most


@pytest.mark.parametrize(("changes", "field", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_names_file_field_and_allowed(make_study, changes, field, allowed):
    path = make_study(**changes)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(f"{path}: {field}: ")
    if allowed:
        assert allowed in message
    assert len(message.splitlines()) <= 2


def test_an_error_found_by_a_range_s_two_bounds_is_said_once(make_study):
    with pytest.raises(SpecError) as caught:
        load_spec(make_study(search__learnin_rate={"type": "float", "low": 1e-3, "high": 1e-2}))
    assert str(caught.value).count("search.learnin_rate: unknown key") == 1


def test_an_unknown_metric_is_not_also_asked_for_a_direction(make_study):
    with pytest.raises(SpecError) as caught:
        load_spec(make_study(objective__metric="bleu"))
    assert str(caught.value).splitlines() == [
        f"{caught.value.source}: objective.metric: 'bleu' is not allowed; allowed: accuracy, f1_macro, loss"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? [a, b]\n: 1\n", "line 1: the key ['a', 'b'] is not a name"),
        ("name: x\ntrain:\n  null: 3\n", "line 3: the key 'null' (read as None) is not a name; quote it"),
        ("1: x\n", "line 1: the key '1' (read as 1) is not a name; quote it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        # A tag whose value PyYAML cannot convert raised its own ValueError, KeyError or TypeError.
        ("name: x\nbudget:\n  n_trials: !!int ten\n", "line 3, column 13: !!int cannot read 'ten'"),
        ("name: x\ntrain:\n  use_cpu: !!bool maybe\n", "line 3, column 12: !!bool cannot read 'maybe'"),
        ("name: !!timestamp today\n", "line 1, column 7: !!timestamp cannot read 'today'"),
        ("name: x\ntrain: !!map [1]\n", "line 2, column 8: expected a mapping node, but found sequence"),
    ],
)
def test_yaml_a_study_file_cannot_be_is_refused_with_its_line(tmp_path, text, message):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}: malformed YAML: ") and message in str(caught.value)


def test_yaml_merge_keys_are_read_and_a_key_beside_them_overrides(make_study):
    path = make_study()
    path.write_text(path.read_text() + "confirm:\n  <<: {top_k: 2, seeds: 4}\n  seeds: 5\n")
    spec = load_spec(path)
    assert (spec.confirm.top_k, spec.confirm.seeds) == (2, 5)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsearch: {learning_rate: [1, 2\n")
    with pytest.raises(SpecError, match=r"broken.yaml: malformed YAML: line \d+"):
        load_spec(path)


def test_bad_override_syntax(make_study):
    with pytest.raises(SpecError, match="--set: 'sampler' is not KEY=VALUE"):
        load_spec(make_study(), ["sampler"])


def test_to_dict_round_trips_the_search_space(make_study):
    spec = load_spec(make_study())
    saved = spec.to_dict()
    assert saved["search"]["learning_rate"] == {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}
    assert saved["sampler"] == {"type": "random", "seed": 0}


def test_switching_sampler_type_on_the_command_line_drops_the_old_types_options(make_study):
    path = make_study(sampler={"type": "tpe", "seed": 3, "n_startup_trials": 4})
    spec = load_spec(path, ["sampler.type=random"])
    assert (spec.sampler.type, spec.sampler.options) == ("random", {"seed": 3})
    with pytest.raises(SpecError, match="sampler.n_startup_trials: unknown key for sampler random"):
        load_spec(path, ["sampler.type=random", "sampler.n_startup_trials=2"])
    with pytest.raises(SpecError, match="sampler.n_startup_trials: unknown key for sampler random"):
        load_spec(make_study(sampler={"type": "random", "n_startup_trials": 4}))


def test_dates_stay_strings(make_study):
    path = make_study()
    path.write_text(path.read_text() + "")
    spec = load_spec(path, ["train.run_name=2024-01-01"])
    assert spec.train["run_name"] == "2024-01-01"


def test_early_stopping_is_off_by_default_and_stored_in_a_form_that_reads_back(make_study):
    from hpsearch.spec import EarlyStoppingSpec, parse_spec

    off = load_spec(make_study())
    assert off.early_stopping == EarlyStoppingSpec(patience=None, threshold=0.0) and not off.early_stopping.enabled
    assert off.to_dict()["early_stopping"] == {"patience": None, "threshold": 0.0}
    assert not load_spec(make_study(early_stopping={"patience": None, "threshold": 0.5})).early_stopping.enabled
    path = make_study(early_stopping={"patience": 3, "threshold": 0})
    on = load_spec(path)
    assert on.early_stopping == EarlyStoppingSpec(patience=3, threshold=0.0) and on.early_stopping.enabled
    assert isinstance(on.early_stopping.threshold, float)
    stored = {k: v for k, v in on.to_dict().items() if k != "source"}  # as `hpsearch train` reads it back
    assert stored["early_stopping"] == {"patience": 3, "threshold": 0.0}
    assert parse_spec(stored, path).early_stopping == on.early_stopping
    assert load_spec(make_study(), ["early_stopping.patience=2"]).early_stopping.patience == 2
    # hyperband is fine with an integer max_resource, or with early stopping off
    hyperband = {"type": "hyperband", "min_resource": 1, "max_resource": 24}
    assert load_spec(make_study(pruner=hyperband, early_stopping={"patience": 2})).early_stopping.patience == 2
    assert load_spec(make_study(pruner={"type": "hyperband"})).pruner.type == "hyperband"


BAD_EARLY_STOPPING = [
    ({"patience": 0}, "early_stopping.patience", "0 is not allowed; a whole number >= 1"),
    ({"patience": -2}, "early_stopping.patience", "-2 is not allowed; a whole number >= 1"),
    ({"patience": 2.5}, "early_stopping.patience", "must be int, got 2.5"),
    ({"patience": True}, "early_stopping.patience", "must be int, got True"),
    ({"patience": "3"}, "early_stopping.patience", "must be int, got '3'"),
    ({"patience": 2, "threshold": -0.1}, "early_stopping.threshold", "-0.1 is not allowed; a finite number >= 0"),
    (
        {"patience": 2, "threshold": float("inf")},
        "early_stopping.threshold",
        "inf is not allowed; a finite number >= 0",
    ),
    ({"patience": 2, "threshold": "small"}, "early_stopping.threshold", "must be float, got 'small'"),
    ({"patient": 2}, "early_stopping.patient", "unknown key; allowed: patience, threshold"),
    (3, "early_stopping", "must be dict, got 3"),
]


@pytest.mark.parametrize(("section", "field", "text"), BAD_EARLY_STOPPING, ids=[str(b[0]) for b in BAD_EARLY_STOPPING])
def test_bad_early_stopping_names_file_field_and_what_is_allowed(make_study, section, field, text):
    path = make_study(early_stopping=section)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field
    assert str(caught.value) == f"{path}: {field}: {text}"


def test_early_stopping_with_hyperband_needs_an_integer_max_resource(make_study):
    path = make_study(pruner={"type": "hyperband", "max_resource": "auto"}, early_stopping={"patience": 2})
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == "pruner.max_resource"
    assert "'auto' reads it from the first completed trial, which early stopping can cut short" in str(caught.value)


def test_model_dropout_and_searched_models_are_read_and_stored(make_study, tmp_path, tiny_model):
    spec = load_spec(make_study(model__dropout=0.1))
    assert spec.model.dropout == 0.1 and spec.model.dropout_for({}) == 0.1
    assert spec.model.dropout_for({"dropout": 0.3}) == 0.3
    assert spec.to_dict()["model"] == {"name_or_path": str(tiny_model), "save_best": False, "dropout": 0.1}
    assert load_spec(make_study()).model.dropout is None

    (tmp_path / "small").mkdir()
    path = make_study(model=DELETE, search__model=["small", "org/larger"])  # a folder and a hub id
    spec = load_spec(path)
    assert spec.model.name_or_path is None
    assert spec.search["model"].choices == ("small", "org/larger")  # as written: the trials' param
    assert spec.model.choices == {"small": str(tmp_path / "small"), "org/larger": "org/larger"}
    assert spec.to_dict()["model"]["choices"] == spec.model.choices
    assert load_spec(make_study(model={"save_best": True}, search__model=["small"])).model.save_best


def test_search_model_given_on_the_command_line_is_relative_to_the_cwd(make_study, tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path.parent)
    spec = load_spec(make_study(model=DELETE), [f"search.model=[{tmp_path.name}/m]"])
    assert spec.model.choices == {f"{tmp_path.name}/m": str(tmp_path / "m")}


BAD_MODEL = [
    ({"search__model": ["a", "b"]}, "model.name_or_path", "is also in search (search.model)"),
    ({"model": "x", "search__model": ["a"]}, "model.name_or_path", "searched or fixed, not both"),
    (
        {"model": DELETE, "search__model": {"type": "float", "low": 0.0, "high": 1.0}},
        "search.model",
        "must be a list of models (folders or hub ids), got a float range",
    ),
    ({"model": DELETE, "search__model": [1, 2]}, "search.model", "1 is not allowed; a model folder or hub id"),
    ({"model": DELETE, "search__model": ["./a", "sub/../a"]}, "search.model", "two choices name the same model"),
    ({"model": DELETE}, "model.name_or_path", "is required"),
    ({"model__dropout": 1.0}, "model.dropout", "1.0 is not allowed; a number in [0, 1)"),
    ({"model__dropout": -0.1}, "model.dropout", "-0.1 is not allowed; a number in [0, 1)"),
    ({"model__dropout": "high"}, "model.dropout", "must be int or float"),
    (
        {"search__dropout": {"type": "float", "low": 0.0, "high": 1.0}},
        "search.dropout",
        "1.0 is not allowed; a number in [0, 1)",
    ),
    ({"model__dropout": 0.1, "search__dropout": [0.0, 0.2]}, "model.dropout", "searched or fixed, not both"),
]


@pytest.mark.parametrize(("changes", "field", "text"), BAD_MODEL, ids=[f"{b[1]}-{b[2][:20]}" for b in BAD_MODEL])
def test_bad_model_choice_or_dropout_names_the_field(make_study, changes, field, text):
    path = make_study(**changes)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: {field}: ") and text in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"train__warmup_steps": -0.1}, "train.warmup_steps"),
        ({"search__warmup_steps": [0.0, -0.5]}, "search.warmup_steps"),
    ],
)
def test_a_value_transformers_refuses_is_blamed_on_the_key_its_message_names(make_study, changes, field):
    from hpsearch.orchestration import preflight

    with pytest.raises(SpecError) as caught:
        preflight.check(load_spec(make_study(**changes)))
    assert caught.value.field == field
    assert "TrainingArguments rejects it: " in caught.value.message and "warmup_steps" in caught.value.message


@pytest.mark.parametrize(
    ("task", "data", "field", "message"),
    [
        (
            "sequence-classification",
            {"text_column": "intent", "label_column": "intent"},
            "data.label_column",
            "'intent' is also data.text_column; each needs a column of its own",
        ),
        (
            "causal-lm",
            {"prompt_column": "q", "completion_column": "q"},
            "data.completion_column",
            "'q' is also data.prompt_column; each needs a column of its own",
        ),
        (
            "seq2seq",
            {"source_column": "doc", "target_column": "doc"},
            "data.target_column",
            "'doc' is also data.source_column; each needs a column of its own",
        ),
    ],
)
def test_two_column_keys_of_the_task_naming_one_column_are_refused_naming_both(make_study, task, data, field, message):
    """A model that reads its answer in its prompt (or its label in its text) learns nothing: refused by validate,
    before the data is read."""
    with pytest.raises(SpecError) as caught:
        load_spec(make_study(task=task, data={"path": "data", **data}, objective={"metric": "loss"}))
    assert (caught.value.field, caught.value.message) == (field, message)


def test_a_chat_column_may_bear_the_name_of_the_pair_columns_it_replaces(make_study):
    spec = load_spec(make_study(task="causal-lm", data={"path": "data", "messages_column": "prompt"}, objective={}))
    assert spec.data.messages_column == "prompt"


@pytest.mark.parametrize("where", ["train", "search", "unknown"])
def test_a_reporting_integration_the_trainer_would_refuse_is_refused_by_validate(make_study, where):
    """Trainer refused it after the model and the data had loaded (wandb not installed: a RuntimeError)."""
    from hpsearch.orchestration import corners, preflight
    from hpsearch.spec.training_args import reporting_integrations

    missing = [name for name in reporting_integrations() if name not in corners._installed()]
    if not missing:
        pytest.skip("every reporting integration transformers knows is installed")
    changes, field, text = {
        "train": ({"train__report_to": missing[0]}, "train.report_to", f"{missing[0]!r} is not installed here"),
        "search": ({"search__report_to": ["none", missing[0]]}, "search.report_to", f"{missing[0]!r} is not installed"),
        "unknown": ({"train__report_to": ["nowhere"]}, "train.report_to", "'nowhere' is not allowed; allowed: none"),
    }[where]
    with pytest.raises(SpecError) as caught:
        preflight.check(load_spec(make_study(**changes)))
    assert caught.value.field == field and caught.value.message.startswith(text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["none", "all"], "'none' stands alone, not in a list with other integrations; allowed: none, all, or a list"),
        (None, "null is not allowed; write none for no integration, all for every one installed here"),
    ],
)
def test_report_to_none_and_all_stand_alone(make_study, value, message):
    """Trainer refuses None or 'none' in a list; the message listed the value it refused ('none' ... allowed: none)."""
    from hpsearch.orchestration import preflight

    with pytest.raises(SpecError) as caught:
        preflight.check(load_spec(make_study(train__report_to=value)))
    assert caught.value.field == "train.report_to" and caught.value.message.startswith(message)


@pytest.mark.parametrize("changes", [{"train__report_to": "flyte"}, {"search__report_to": ["none", "flyte"]}])
def test_flyte_is_refused_as_no_trial_can_report_to_it(make_study, changes):
    """transformers' FlyteCallback reads the checkpoint of the Flyte task it runs in, and a trial runs in none:
    refused whether flytekit is installed or not (the message said 'not installed here', false with flytekit)."""
    where = next(iter(changes)).replace("__", ".")
    with pytest.raises(SpecError) as caught:
        load_spec(make_study(**changes))
    assert caught.value.field == where
    assert caught.value.message.startswith("'flyte' reports only from inside a Flyte task")
    assert "flyte" not in caught.value.message.partition("allowed: ")[2]


def test_azure_ml_is_taken_when_azureml_is_installed_beside_mlflow(make_study, monkeypatch):
    """transformers' list of the installed integrations (what `all` reads) leaves azure_ml out when mlflow is
    installed too, and validate refused it as not installed; Trainer builds AzureMLCallback from azureml alone."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK, integration_utils

    from hpsearch.orchestration import corners

    monkeypatch.setattr(integration_utils, "is_azureml_available", lambda: True)
    monkeypatch.setattr(integration_utils, "is_mlflow_available", lambda: True)
    assert "azure_ml" not in integration_utils.get_available_reporting_integrations()
    INTEGRATION_TO_CALLBACK["azure_ml"]()  # what a trial's Trainer builds for it: no error
    spec = load_spec(make_study(train__report_to=["azure_ml"]))
    corners.check_training_arguments(spec)
    monkeypatch.setattr(integration_utils, "is_azureml_available", lambda: False)
    with pytest.raises(SpecError, match="'azure_ml' is not installed here; allowed: none, all, mlflow"):
        corners.check_training_arguments(spec)


def test_a_model_without_a_position_limit_takes_any_max_length(make_study, tmp_path, tiny_model):
    """XLNet's config says -1 positions (it has no position embeddings): every max_length 'exceeded' them."""
    from transformers import AutoTokenizer, XLNetConfig, XLNetModel

    from hpsearch.orchestration import preflight

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = XLNetConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layer=1, n_head=2, d_inner=64, pad_token_id=0)
    assert config.max_position_embeddings == -1
    XLNetModel(config).save_pretrained(tmp_path / "xlnet")
    tokenizer.save_pretrained(tmp_path / "xlnet")
    preflight.check(load_spec(make_study(model={"name_or_path": str(tmp_path / "xlnet")})))


@pytest.mark.parametrize("tokens", [128, 129, 10**4000], ids=["128", "129", "10**4000"])
def test_seq2seq_generation_beyond_the_decoder_s_positions_is_refused(make_study, intents_data, tiny_seq2seq, tokens):
    """Each generated token takes a decoder position: the tiny BART's 128 generate, 129 failed every trial (an
    IndexError from its position embeddings at the first evaluation). A long value is cut, as everywhere."""
    from hpsearch.orchestration import preflight

    path = make_study(
        task="seq2seq",
        model={"name_or_path": str(tiny_seq2seq)},
        data={"path": str(intents_data), "source_column": "text", "target_column": "intent"},
        objective={"metric": "loss"},
        generation={"max_new_tokens": tokens},
    )
    if tokens == 128:
        preflight.check(load_spec(path))
        return
    with pytest.raises(SpecError) as caught:
        preflight.check(load_spec(path))
    assert caught.value.field == "generation.max_new_tokens"
    message = caught.value.message
    assert message == f"{shown(tokens)} exceeds the model's 128 positions" and len(message) < 99


LONG = "x" * 5000
CUT = [
    # (changes, the field; each a check that formats the value itself, in the module named)
    ({"pruner": {"type": "hyperband", "min_resource": LONG}}, "pruner.min_resource"),  # choosers
    ({"search__finetune": [LONG]}, "search.finetune"),  # search: one of hpsearch's settings
    ({"search__weight_decay": [LONG, LONG]}, "search.weight_decay.choices"),  # search: a choice twice
    ({"train__label_names": [LONG, float("nan")]}, "train.label_names"),  # search: not finite
    ({"train__use_cpu": LONG}, "train.use_cpu"),  # training_args: a type
    ({"train__optim": LONG}, "train.optim"),  # training_args: an Enum's values
    ({"objective__metric": LONG}, "objective.metric"),  # rules
    ({"evaluation__every": LONG}, "evaluation.every"),  # fields: int or float
    ({"data__max_length": -(10**4000)}, "data.max_length"),  # fields: a rule's {v}, a number as written
]


@pytest.mark.parametrize(("changes", "field"), CUT, ids=[c[1] for c in CUT])
def test_a_long_value_is_quoted_cut_to_60_characters_by_every_check(make_study, changes, field):
    """A 5,000-character value was quoted whole by the checks that format it themselves: one error line of 5,000."""
    path = make_study(**changes)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field
    message = caught.value.message
    assert "..." in message and "x" * 60 not in message and "0" * 60 not in message
