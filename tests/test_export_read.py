"""`hpsearch train` of a hand-edited export: it trains, or it is refused before any training in one line
naming the file and the key, with nothing written."""

import json

import pytest
import yaml

from hpsearch import cli
from hpsearch.orchestration.export_read import load_export

LABELS = ["cancel", "password", "refund", "track"]


@pytest.fixture
def exported(make_study, tmp_path):
    """An export of the tiny study as `hpsearch export` writes it (its stored spec, no sweep): (arguments
    file, manifest) in tmp_path/x."""
    from hpsearch.spec import load_spec

    spec = load_spec(make_study()).to_dict()
    folder = tmp_path / "x"
    folder.mkdir()
    best = folder / "best.yaml"
    best.write_text(yaml.safe_dump({"learning_rate": 1e-3, "seed": 42, "use_cpu": True}))
    manifest = {
        "study": "tiny",
        "trial": 0,
        "metric": "eval_accuracy",
        "value": 0.5,
        "params": {"learning_rate": 1e-3},
        "steps_trained": 4,
        "task": spec["task"],
        "model": spec["model"]["name_or_path"],
        "data": {**spec["data"], "fingerprint": "0"},
        "spec": spec,
        "labels": LABELS,
        "versions": {"torch": "2.13.0"},
        "train_command": f"hpsearch train {best}",
    }
    (folder / "best.manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return best, manifest


def write(best, manifest=None, text=None):
    """The manifest beside `best`, as YAML, or the `text` given."""
    manifest_file = best.parent / "best.manifest.yaml"
    manifest_file.write_text(text if text is not None else yaml.safe_dump(manifest, sort_keys=False))
    return manifest_file


def refused(best, capsys, monkeypatch) -> str:
    """`hpsearch train BEST` exits 2 with one line, before any training and with nothing written."""
    from hpsearch.orchestration import retrain

    monkeypatch.setattr(retrain, "make_trainer", lambda *a, **k: pytest.fail("reached training"))
    before = sorted(best.parent.iterdir())
    assert cli.main(["train", str(best)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and sorted(best.parent.iterdir()) == before, err
    return err


def test_numbers_read_as_the_study_file_reads_them(exported):
    """json.dumps writes 2e-05 (a usual learning rate), and a hand-edit writes 1e-4: YAML 1.1 read both as
    text, and train refused them (`learning_rate: must be float, got '2e-05'`)."""
    best, manifest = exported
    as_json = best.with_suffix(".json")
    as_json.write_text(json.dumps({"learning_rate": 2e-5, "seed": 42}))
    as_json.with_name("best.manifest.json").write_text(json.dumps(manifest))
    assert load_export(as_json)[0]["learning_rate"] == 2e-5
    best.write_text("learning_rate: 1e-4\nseed: 42\n")
    assert load_export(best)[0]["learning_rate"] == 1e-4


def test_a_key_twice_or_not_a_name_is_refused(exported, capsys, monkeypatch):
    """PyYAML kept the last of two keys silently; a `versions` key that is not a name ended in a TypeError."""
    best, manifest = exported
    best.write_text("seed: 1\nlearning_rate: 0.1\nseed: 2\n")
    err = refused(best, capsys, monkeypatch)
    assert err.startswith(f"error: {best}: malformed YAML: 'seed' is given twice in one mapping: line 1 and line 3")
    best.write_text("seed: 1\n")
    manifest_file = write(best, {**manifest, "versions": {1: "2.13.0"}})
    line = manifest_file.read_text().splitlines().index("  1: 2.13.0") + 1
    err = refused(best, capsys, monkeypatch)
    assert (
        err == f"error: {manifest_file}: malformed YAML: line {line}: the key '1' (read as 1) is not a name; quote it"
    )


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_what_export_writes_reads_back_as_written(tmp_path, fmt):
    """Text that reads as a number (a label '1e3', a fingerprint of digits and one e) was written unquoted and read
    back as a float; an emoji json.dumps writes as a surrogate pair was read by the YAML loader as two halves."""
    from hpsearch.orchestration.export_read import _read_mapping
    from hpsearch.results import export

    written = {
        "labels": ["1e3", "2e-05", "1_0", ".5", "2024-01-01", "talk_to_human \U0001f600", "yes"],
        "data": {"fingerprint": "1234567e89012345"},
        "study": "2e5",
        "learning_rate": 2e-05,
        "seed": 42,
    }
    path = tmp_path / f"best.{fmt}"
    path.write_text(export.dump(written, fmt), encoding="utf-8")
    assert _read_mapping(path) == written
    if fmt == "yaml":  # and as a user's yaml.safe_load reads it (the export guide loads it that way)
        assert yaml.safe_load(path.read_text(encoding="utf-8")) == written


def test_a_json_key_given_twice_is_refused(exported, capsys, monkeypatch):
    """json.loads kept the last of two keys silently."""
    best, manifest = exported
    as_json = best.with_suffix(".json")
    as_json.write_text('{"seed": 1, "learning_rate": 0.1, "seed": 2}')
    as_json.with_name("best.manifest.json").write_text(json.dumps(manifest))
    err = refused(as_json, capsys, monkeypatch)
    assert err == f"error: {as_json}: seed: given twice in one object; give it once"


@pytest.mark.parametrize(
    ("versions", "key", "message"),
    [
        ({"torch": 2.1}, "versions.torch", "2.1 is not allowed; a version as text (quoted in YAML: '2.10' is not 2.1)"),
        ({"torch": ["2.13.0"]}, "versions.torch", "['2.13.0'] is not allowed; a version as text"),
        ("torch 2.13.0", "versions", "'torch 2.13.0' is not allowed; a mapping of package to version"),
        ([], "versions", "[] is not allowed; a mapping of package to version"),  # empty, so it was read as {}
    ],
    ids=["a-number", "a-list", "text", "an-empty-list"],
)
def test_versions_that_are_not_text_are_refused(exported, capsys, monkeypatch, versions, key, message):
    """A version YAML reads as a number (2.10 as 2.1) was compared as `2.1 recorded`, after the training."""
    best, manifest = exported
    manifest_file = write(best, {**manifest, "versions": versions})
    assert refused(best, capsys, monkeypatch).startswith(f"error: {manifest_file}: {key}: {message}")


def test_a_schema_version_that_is_not_a_number_is_refused(exported, capsys, monkeypatch):
    """It ended in `ValueError: invalid literal for int()`: the old schedule's migration read it first."""
    best, manifest = exported
    manifest_file = write(best, {**manifest, "spec": {**manifest["spec"], "schema_version": "x"}})
    err = refused(best, capsys, monkeypatch)
    assert err == f"error: {manifest_file}: spec.schema_version: must be int, got 'x': export again"


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"spec.schema_version": 99}, "spec.schema_version", "must be 1 to 3, got 99: export again"),
        (
            {"spec.train.learning_rate": 0.1},
            "spec.train.learning_rate",
            "is also in search; a parameter is either searched or fixed: export again",
        ),
        ({"spec.heartbeat.interval": 0}, "spec.heartbeat.interval", "must be > 0, got 0: export again"),
        ({"spec.future_key": 1}, "spec.future_key", "unknown key; allowed: augmentation, budget, "),
        # an export of a study stored before schema version 3: its step schedule is migrated first (a TypeError)
        (
            {"spec.schema_version": 2, "spec.train.eval_steps": "x"},
            "spec.train.eval_steps",
            "'x' is not allowed; a number of steps, or a fraction of training, > 0: export again",
        ),
    ],
    ids=["newer-schema", "searched-and-fixed", "a-bound", "an-unknown-key", "old-schedule"],
)
def test_an_edited_stored_spec_is_refused_at_its_key_in_the_manifest(
    exported, capsys, monkeypatch, changes, key, message
):
    """The stored spec's errors named the study file's key (`schema_version: must be 1 to 3, got 99`), which the
    manifest holds under `spec`, and did not say what to do: export writes the stored spec valid."""
    best, manifest = exported
    manifest_file = write(best, edited(manifest, changes))
    err = refused(best, capsys, monkeypatch)
    assert err.startswith(f"error: {manifest_file}: {key}: {message}") and err.endswith(": export again"), err


def test_every_error_of_an_edited_stored_spec_is_at_its_key(exported, capsys, monkeypatch):
    from hpsearch.orchestration import retrain

    best, manifest = exported
    manifest_file = write(best, edited(manifest, {"spec.confirm.top_k": 0, "spec.confirm.seeds": 0}))
    monkeypatch.setattr(retrain, "make_trainer", lambda *a, **k: pytest.fail("reached training"))
    assert cli.main(["train", str(best)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {manifest_file}: spec.confirm.top_k: must be > 0, got 0: export again",
        f"{manifest_file}: spec.confirm.seeds: must be > 0, got 0: export again",
    ]


@pytest.mark.parametrize(
    ("metric", "given"), [("nonexistent", "'nonexistent'"), ("eval_nonexistent", "'eval_nonexistent'")]
)
def test_a_metric_the_task_does_not_report_is_refused_before_training(exported, capsys, monkeypatch, metric, given):
    """It trained fully, then ended in `KeyError: 'nonexistent'` with the model not saved. The same rule as
    a study file's objective.metric, and its list of what the task reports."""
    best, manifest = exported
    manifest_file = write(best, {**manifest, "metric": metric})
    err = refused(best, capsys, monkeypatch)
    assert err == f"error: {manifest_file}: metric: {given} is not allowed; allowed: accuracy, f1_macro, loss"


def test_a_metric_is_named_with_or_without_eval_as_a_study_file_names_it(exported):
    from hpsearch.orchestration.export_read import parse_stored

    best, manifest = exported
    stored = {k: v for k, v in manifest["spec"].items() if k != "source"}  # as train parses it
    for metric in ("eval_accuracy", "accuracy"):
        assert parse_stored(stored, metric, best).objective.key == "eval_accuracy"


def test_another_metric_the_task_reports_is_refused_as_an_edited_copy(exported, capsys, monkeypatch):
    """The manifest's value is the trial's accuracy: train compared a retrained F1 with it ("does NOT match")."""
    best, manifest = exported
    manifest_file = write(best, {**manifest, "metric": "eval_f1_macro"})
    assert refused(best, capsys, monkeypatch) == (
        f"error: {manifest_file}: metric: 'eval_f1_macro' differs from spec.objective.metric ('accuracy'), "
        "the metric of the trial's value: make the two agree"
    )


@pytest.mark.slow
def test_a_metric_missing_after_evaluation_keeps_the_trained_model(exported, capsys, monkeypatch):
    """Should evaluation still not report the metric, that is known only once trained: the model is saved
    first, and the error says where."""
    from transformers import AutoModelForSequenceClassification, Trainer

    best, _ = exported
    monkeypatch.setattr(Trainer, "evaluate", lambda self, *a, **k: {"eval_loss": 1.0})
    assert cli.main(["train", str(best)]) == 2
    model = best.parent / "model"
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {best.parent / 'best.manifest.yaml'}: metric: evaluation reported no 'eval_accuracy' "
        f"(it reported eval_loss); the model is saved in {model}"
    )
    assert AutoModelForSequenceClassification.from_pretrained(model).config.id2label[0] == "cancel"


DELETE = object()


def edited(manifest: dict, changes: dict) -> dict:
    """A copy of `manifest` with dotted keys set (`spec.data.path`), or removed (DELETE)."""
    out = json.loads(json.dumps(manifest))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        # a copy edited alone was ignored: train read the spec's and trained on the old data, model or task
        ({"data.path": "/nope"}, "data.path", "'/nope' differs from spec.data.path ("),
        ({"model": "/nope"}, "model", "'/nope' differs from spec.model.name_or_path ("),
        ({"task": "seq2seq"}, "task", "'seq2seq' differs from spec.task ('sequence-classification'), which train"),
        # refused as they were: the study file's rules, or the manifest's own
        # the data or model as it is now (moved since the study), at the stored spec's key; exporting again
        # writes the same spec, so it is not the hint
        ({"data.path": "/nope", "spec.data.path": "/nope"}, "spec.data.path", "no such file or folder: /nope"),
        (
            {"model": "/nope", "spec.model.name_or_path": "/nope"},
            "spec.model.name_or_path",
            "no such model folder: /nope",
        ),
        ({"data.text_column": "x", "spec.data.text_column": "x"}, "spec.data.text_column", "no column 'x' in split"),
        ({"labels": DELETE}, "labels", "missing or not list: export again"),
    ],
    ids=["data-copy", "model-copy", "task-copy", "data-missing", "model-missing", "no-column", "no-labels"],
)
def test_a_hand_edited_manifest_is_refused_before_training(exported, capsys, monkeypatch, changes, key, message):
    best, manifest = exported
    manifest_file = write(best, edited(manifest, changes))
    assert refused(best, capsys, monkeypatch).startswith(f"error: {manifest_file}: {key}: {message}")


def test_an_edited_copy_names_both_values(exported, capsys, monkeypatch):
    best, manifest = exported
    manifest_file = write(best, edited(manifest, {"data.path": "/nope"}))
    assert refused(best, capsys, monkeypatch) == (
        f"error: {manifest_file}: data.path: '/nope' differs from spec.data.path ({manifest['data']['path']!r}), "
        "which train reads: make the two agree"
    )


@pytest.mark.parametrize(
    ("file", "text", "key", "message"),
    [
        ("best.yaml", "", "", "must be a mapping (write it with: hpsearch export STUDY)"),
        ("best.manifest.yaml", "", "", "must be a mapping (write it with: hpsearch export STUDY)"),
        ("best.yaml", "learning_rate: 0.001\nfuture_argument: 1\n", "future_argument: ", "unknown key; search and"),
    ],
    ids=["empty", "empty-manifest", "a-newer-transformers-key"],
)
def test_an_empty_file_or_a_newer_key_is_refused_before_training(
    exported, capsys, monkeypatch, file, text, key, message
):
    best, _ = exported
    (best.parent / file).write_text(text)
    assert refused(best, capsys, monkeypatch).startswith(f"error: {best.parent / file}: {key}{message}")


@pytest.mark.slow
def test_a_changed_learning_rate_and_a_removed_key_train(exported, capsys):
    best, _ = exported
    best.write_text("learning_rate: 1e-4\nuse_cpu: true\n")  # as a user writes it; the seed left out
    assert cli.main(["train", str(best)]) == 0
    assert json.loads((best.parent / "model" / "hpsearch_train.json").read_text())["steps"] == 4
    assert "saved full model and tokenizer" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["params", "confirmation", "stop_at_step"])
def test_a_long_manifest_value_is_quoted_cut_to_60_characters(exported, capsys, monkeypatch, key):
    """A 3,000-character value was quoted whole: an error line of 3,100 characters."""
    best, manifest = exported
    manifest_file = write(best, {**manifest, key: ["x" * 3000] if key == "params" else "x" * 3000})
    err = refused(best, capsys, monkeypatch)
    assert err.startswith(f"error: {manifest_file}: {key}: ") and "..." in err and len(err) < 300, err[:300]
