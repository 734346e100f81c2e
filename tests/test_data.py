"""data.py and the classification task: local formats, splits, labels, subsampling, the cache."""

import json

import datasets
import pandas as pd
import pytest

from hpsearch.data import sources as data
from hpsearch.spec import DataSpec, SpecError
from hpsearch.spec.paths import cache_dir
from hpsearch.tasks import classification

from .conftest import write_intents


def spec_for(path, **kw) -> DataSpec:
    return DataSpec(path=str(path), label_column="intent", **kw)


def test_folder_holds_one_file_per_split(intents_data):
    raw = data.load_raw(spec_for(intents_data), "s.yaml")
    assert (len(raw.train), len(raw.eval)) == (96, 32)
    assert raw.train.column_names == ["text", "label"]


@pytest.mark.parametrize("suffix", ["json", "jsonl", "parquet"])
def test_other_formats(tmp_path, intents_data, suffix):
    folder = tmp_path / suffix
    folder.mkdir()
    for split in ("train", "validation"):
        frame = pd.read_csv(intents_data / f"{split}.csv")
        target = folder / f"{split}.{suffix}"
        if suffix == "parquet":
            frame.to_parquet(target)
        elif suffix == "jsonl":
            frame.to_json(target, orient="records", lines=True)
        else:
            target.write_text(json.dumps(frame.to_dict(orient="records")))
    raw = data.load_raw(spec_for(folder), "s.yaml")
    reference = data.load_raw(spec_for(intents_data), "s.yaml")
    assert raw.fingerprint == reference.fingerprint


def test_single_file_with_eval_fraction(intents_data):
    raw = data.load_raw(spec_for(intents_data / "train.csv", eval_split=None, eval_fraction=0.25), "s.yaml")
    assert (len(raw.train), len(raw.eval)) == (72, 24)
    again = data.load_raw(spec_for(intents_data / "train.csv", eval_split=None, eval_fraction=0.25), "s.yaml")
    assert raw.eval["text"] == again.eval["text"]  # the held-out part is seeded


def test_subsampling_is_seeded(intents_data):
    one = data.load_raw(spec_for(intents_data, max_train_samples=20, seed=1), "s.yaml")
    two = data.load_raw(spec_for(intents_data, max_train_samples=20, seed=1), "s.yaml")
    other = data.load_raw(spec_for(intents_data, max_train_samples=20, seed=2), "s.yaml")
    assert len(one.train) == 20 and one.train["text"] == two.train["text"]
    assert one.fingerprint == two.fingerprint != other.fingerprint


def test_fingerprint_follows_content(tmp_path):
    a = data.load_raw(spec_for(write_intents(tmp_path / "a", seed=0)), "s.yaml")
    b = data.load_raw(spec_for(write_intents(tmp_path / "b", seed=1)), "s.yaml")
    assert a.fingerprint != b.fingerprint


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_split": "training"}, "data.train_split: no split 'training' in .*; splits: train, validation"),
        ({"eval_split": "dev"}, "data.eval_split: no split 'dev'"),
        (
            {"text_column": "utterance"},
            "data.text_column: no column 'utterance' in split 'train'; columns: 'text', 'intent'",
        ),
        ({"label_column": "label"}, "data.label_column: no column 'label'"),
    ],
)
def test_missing_split_or_column(intents_data, changes, message):
    kw = {"label_column": "intent", **changes}
    with pytest.raises(SpecError, match=message):
        data.load_raw(DataSpec(path=str(intents_data), **kw), "s.yaml")


def test_missing_file_and_unsupported_file(tmp_path):
    with pytest.raises(SpecError, match="data.path: no such file or folder: ./nowhere"):
        data.load_raw(spec_for("./nowhere"), "s.yaml")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SpecError, match="data.path: notes.txt: unsupported file"):
        data.load_raw(spec_for(tmp_path / "notes.txt"), "s.yaml")


@pytest.mark.parametrize("name", ["loop", "loop.csv"])
def test_a_data_path_that_is_a_loop_of_symbolic_links_exits_2_naming_it(tmp_path, make_study, capsys, name):
    from hpsearch import cli

    (tmp_path / name).symlink_to(tmp_path / f"other-{name}")
    (tmp_path / f"other-{name}").symlink_to(tmp_path / name)
    path = make_study(data__path=name)
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: data.path: {name}: a loop of symbolic links, it leads to no file or folder"


def test_unreachable_hub_dataset_fails_fast_with_one_line():
    with pytest.raises(SpecError) as caught:
        data.load_raw(spec_for("nobody/no-such-dataset"), "s.yaml")
    assert "data.path: 'nobody/no-such-dataset' is not a local file or folder" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_eval_labels_must_occur_in_train(intents_data, make_study):
    from hpsearch.spec import load_spec

    frame = pd.read_csv(intents_data / "validation.csv")
    frame.loc[0, "intent"] = "complaint"
    frame.to_csv(intents_data / "validation.csv", index=False)
    spec = load_spec(make_study())
    raw = data.load_raw(spec.data, spec.source)
    with pytest.raises(SpecError, match="data.eval_split: 1 eval label.* never occur in the train split: complaint"):
        classification.label_names(raw, spec)


def test_integer_labels_sort_numerically():
    raw = data.RawData(
        train=datasets.Dataset.from_dict({"text": ["a"] * 3, "label": ["10", "2", "1"]}),
        eval=datasets.Dataset.from_dict({"text": ["a"], "label": ["2"]}),
        fingerprint="x",
    )

    class FakeSpec:
        source = "s.yaml"

    assert classification.label_names(raw, FakeSpec) == ("1", "2", "10")


def test_tokenization_is_cached_by_tokenizer_length_and_data(intents_data, make_study, tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from hpsearch.spec import load_spec

    spec = load_spec(make_study())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    raw = data.load_raw(spec.data, spec.source)
    builds = []
    real = data.cached

    def counting(key, build):
        return real(key, lambda: builds.append(key) or build())

    import hpsearch.tasks.classification as task

    task.sources.cached = counting
    try:
        first = task.prepare(spec, raw, tokenizer)
        again = task.prepare(spec, raw, tokenizer)
        longer = task.prepare(load_spec(make_study(data__max_length=8)), raw, tokenizer)
        other_rows = data.load_raw(spec_for(write_intents(tmp_path / "other", seed=9)), "s.yaml")
        task.prepare(spec, other_rows, tokenizer)
        task.prepare(spec, raw, tokenizer)
    finally:
        task.sources.cached = real
    # hits: the second and last prepare; new entries: max_length 8, and other data
    assert len(builds) == 3
    assert first.train["input_ids"] == again.train["input_ids"]
    assert max(map(len, longer.train["input_ids"])) <= 8
    assert first.train["labels"][:4] == [first.labels.index(x) for x in raw.train["label"][:4]]
    assert len(list((cache_dir() / "tokenized").iterdir())) == 3


def test_macro_f1_matches_its_definition():
    import numpy as np
    from transformers import EvalPrediction

    truth = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0])
    logits = np.eye(3)[predicted]  # each row's argmax is its prediction
    metrics = classification.compute_metrics(EvalPrediction(predictions=logits, label_ids=truth))
    # label 0: tp1 fp1 fn1 -> 0.5; label 1: tp2 fp1 fn0 -> 0.8; label 2: tp0 fn1 -> 0
    assert metrics["f1_macro"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)


def test_subsample_keeps_every_label_and_its_share(tmp_path):
    import csv

    folder = tmp_path / "skewed"
    folder.mkdir()
    rows = [(f"row {i}", "common") for i in range(90)] + [(f"rare {i}", f"rare{i % 5}") for i in range(10)]
    for split in ("train", "validation"):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("text", "intent"), *rows])
    raw = data.load_raw(spec_for(folder, max_train_samples=20, seed=3), "s.yaml")
    labels = raw.train["label"]
    assert len(labels) == 20
    assert set(labels) == {"common", "rare0", "rare1", "rare2", "rare3", "rare4"}
    assert labels.count("common") >= 14  # 90% of the rows, less the rare labels' guaranteed seats


def test_eval_fraction_is_stratified_and_keeps_rare_labels_in_train(tmp_path):
    import csv

    path = tmp_path / "one.csv"
    rows = [(f"row {i}", f"label{i % 10}") for i in range(100)] + [("lonely", "singleton")]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("text", "intent"), *rows])
    raw = data.load_raw(spec_for(path, eval_split=None, eval_fraction=0.2), "s.yaml")
    assert len(raw.eval) == 20 and len(raw.train) == 81
    assert "singleton" in raw.train["label"] and "singleton" not in raw.eval["label"]
    assert sorted(set(raw.eval["label"])) == [f"label{i}" for i in range(10)]


def test_csv_cells_are_read_as_text(tmp_path):
    import csv

    folder = tmp_path / "codes"
    folder.mkdir()
    for split in ("train", "validation"):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("text", "intent"), ("NA", "007"), ("null", "10"), ("x", "007")])
    raw = data.load_raw(spec_for(folder), "s.yaml")
    assert raw.train["text"] == ["NA", "null", "x"]
    assert raw.train["label"] == ["007", "10", "007"]


def test_a_csv_header_that_names_a_column_twice_is_refused_naming_the_file_and_the_column(tmp_path):
    """pandas reads the second `text` as `text.1`: the study trained on the first without a word."""
    folder = tmp_path / "twice"
    folder.mkdir()
    for split in ("train", "validation"):
        (folder / f"{split}.csv").write_text("text,intent,text\na,x,b\nc,y,d\n")
    with pytest.raises(SpecError) as caught:
        data.load_raw(spec_for(folder), "s.yaml")
    assert str(caught.value) == "s.yaml: data.path: train.csv: column 'text' is named twice in its header; name it once"


def test_a_column_the_task_does_not_read_may_be_named_twice(tmp_path):
    """Only a column the study reads is ambiguous: a repeated `note` beside it was read before, and still is."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for split in ("train", "validation"):
        (folder / f"{split}.csv").write_text("text,intent,note,note\na,x,1,2\nc,y,3,4\n")
    raw = data.load_raw(spec_for(folder), "s.yaml")
    assert raw.train["text"] == ["a", "c"] and raw.train["label"] == ["x", "y"]


def test_classification_evaluates_shortest_rows_first_with_the_same_metrics(make_study, tiny_model, tmp_path):
    """Rows sorted by length pad least; a row's logits are its own, so the metrics are the split order's."""
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from hpsearch.data.subsample import stratified_rows
    from hpsearch.spec import load_spec
    from hpsearch.spec.sections import EvaluationSpec

    spec = load_spec(make_study())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    raw = data.load_raw(spec.data, spec.source)
    task_data = classification.prepare(spec, raw, tokenizer)
    lengths = [len(ids) for ids in task_data.evaluated["input_ids"]]
    assert lengths == sorted(lengths) and len(set(lengths)) > 1
    assert sorted(map(tuple, task_data.evaluated["input_ids"])) == sorted(map(tuple, task_data.eval["input_ids"]))
    assert task_data.eval["labels"] == [task_data.labels.index(x) for x in raw.eval["label"]]  # split order kept

    # The subsample's rows are chosen in the split's order (as before), then evaluated shortest first.
    evaluation = EvaluationSpec(subsample=len(task_data.eval) // 2)
    chosen = task_data.eval.select(
        stratified_rows(task_data.eval["labels"], len(task_data.eval), evaluation.subsample, evaluation.seed)
    )
    subsample = task_data.eval_subsample(evaluation)
    assert sorted(map(tuple, subsample["input_ids"])) == sorted(map(tuple, chosen["input_ids"]))
    assert [len(ids) for ids in subsample["input_ids"]] == sorted(len(ids) for ids in chosen["input_ids"])

    model = classification.build_model(str(tiny_model), task_data.labels)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_eval_batch_size=3, report_to="none")
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=classification.collator(tokenizer),
        compute_metrics=classification.compute_metrics,
    )
    in_order, by_length = trainer.evaluate(task_data.eval), trainer.evaluate(task_data.evaluated)
    assert by_length["eval_accuracy"] == in_order["eval_accuracy"]
    assert by_length["eval_loss"] == pytest.approx(in_order["eval_loss"], rel=1e-5)


def write_rows(folder, rows_by_split: dict, suffix: str = "jsonl"):
    """One JSON Lines file per split (`suffix` names the file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        (folder / f"{split}.{suffix}").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


INTENT_ROWS = [{"text": f"t{i}", "intent": ["a", "b"][i % 2]} for i in range(8)]


def test_a_json_file_in_json_lines_form_a_bom_and_mixed_types_are_read(tmp_path):
    mixed = [{**row, "meta": i if i % 2 else f"id-{i}"} for i, row in enumerate(INTENT_ROWS)]
    folder = write_rows(tmp_path / "json", {"train": mixed, "validation": mixed}, suffix="json")
    bom = folder / "train.json"
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    raw = data.load_raw(spec_for(folder), "s.yaml")
    assert raw.train["text"][0] == "t0" and raw.train["label"] == ["a", "b"] * 4
    labels = [{"text": "t", "intent": v} for v in (1, "other", 2, "other")]
    raw = data.load_raw(spec_for(write_rows(tmp_path / "mixed", {"train": labels, "validation": labels})), "s.yaml")
    assert raw.train["label"] == ["1", "other", "2", "other"]


def test_a_column_the_task_does_not_read_may_hold_lists_in_some_rows_only(tmp_path):
    """Arrow holds one type per column: such a metadata column made the whole file unreadable (at data.path). It
    is read as text; the rows, and the data's fingerprint (of the task's columns only), are the file's without it."""
    tags = [["x"], "y", None, {"k": 1}, 2, ["x", "z"], "y", None]
    meta = [{**row, "tags": tag} for row, tag in zip(INTENT_ROWS, tags, strict=True)]
    raw = data.load_raw(spec_for(write_rows(tmp_path / "meta", {"train": meta, "validation": meta})), "s.yaml")
    plain = data.load_raw(
        spec_for(write_rows(tmp_path / "plain", {"train": INTENT_ROWS, "validation": INTENT_ROWS})), "s.yaml"
    )
    assert raw.train["text"] == plain.train["text"] and raw.train["label"] == plain.train["label"]
    assert raw.fingerprint == plain.fingerprint


@pytest.mark.parametrize("single", [False, True])
def test_a_save_to_disk_folder_is_read_with_its_splits(tmp_path, single):
    rows = datasets.Dataset.from_list(INTENT_ROWS)
    saved = rows if single else datasets.DatasetDict({"train": rows, "validation": rows.select(range(2))})
    saved.save_to_disk(str(tmp_path / "saved"))
    spec = spec_for(tmp_path / "saved", **({"eval_split": None, "eval_fraction": 0.25} if single else {}))
    raw = data.load_raw(spec, "s.yaml")
    assert (len(raw.train), len(raw.eval)) == ((6, 2) if single else (8, 2))


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (lambda saved: (saved / "train" / "state.json").write_text("{not json"), "Expecting property name"),
        (lambda saved: (saved / "dataset_dict.json").write_text("{not json"), "Expecting property name"),
        (lambda saved: [f.unlink() for f in (saved / "train").glob("*.arrow")], "No such file or directory"),
    ],
)
def test_a_damaged_save_to_disk_folder_is_refused_naming_data_path(tmp_path, damage, found):
    rows = datasets.Dataset.from_list(INTENT_ROWS)
    datasets.DatasetDict({"train": rows, "validation": rows}).save_to_disk(str(tmp_path / "saved"))
    damage(tmp_path / "saved")
    with pytest.raises(SpecError) as caught:
        data.load_raw(spec_for(tmp_path / "saved"), "s.yaml")
    message = str(caught.value)
    assert message.startswith(f"s.yaml: data.path: cannot read {tmp_path / 'saved'} as a save_to_disk folder: ")
    assert found in message and "\n" not in message


def test_a_parquet_written_by_datasets_keeps_its_label_names(tmp_path):
    folder = tmp_path / "parquet"
    folder.mkdir()
    features = datasets.Features({"text": datasets.Value("string"), "intent": datasets.ClassLabel(names=["b", "a"])})
    rows = datasets.Dataset.from_list([{"text": "x", "intent": i % 2} for i in range(4)], features=features)
    for split in ("train", "validation"):
        rows.to_parquet(folder / f"{split}.parquet")
    assert data.load_raw(spec_for(folder), "s.yaml").train["label"] == ["b", "a", "b", "a"]


def test_a_pandas_index_is_not_a_column(tmp_path):
    """A filtered frame's index (not 0, 1, 2, ...) is written as `__index_level_0__` by pandas, and kept by
    `datasets`: row numbers, never listed among the columns. A named index level is the user's column."""
    frame = pd.DataFrame(INTENT_ROWS)
    kept = frame[frame.index % 3 != 0]
    (tmp_path / "parquet").mkdir()
    for split in ("train", "validation"):
        kept.to_parquet(tmp_path / "parquet" / f"{split}.parquet")
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(kept)}).save_to_disk(str(tmp_path / "saved"))
    for folder in ("parquet", "saved"):
        spec = DataSpec(path=str(tmp_path / folder), label_column="label", eval_split=None, eval_fraction=0.25)
        with pytest.raises(SpecError, match="no column 'label' in split 'train'; columns: 'text', 'intent'$"):
            data.load_raw(spec, "s.yaml")
    (tmp_path / "named").mkdir()
    for split in ("train", "validation"):
        kept.set_index("text").to_parquet(tmp_path / "named" / f"{split}.parquet")
    assert data.load_raw(spec_for(tmp_path / "named"), "s.yaml").train["text"] == list(kept["text"])


def test_whole_float_labels_are_integers_and_labels_sort_as_numbers(tmp_path):
    folder = tmp_path / "floats"
    folder.mkdir()
    for split in ("train", "validation"):
        pd.DataFrame({"text": ["x"] * 4, "intent": [10.0, 2.0, 0.0, 2.5]}).to_parquet(folder / f"{split}.parquet")
    raw = data.load_raw(spec_for(folder), "s.yaml")
    assert classification.label_names(raw, FakeSpec) == ("0", "2", "2.5", "10")


class FakeSpec:
    source = "s.yaml"

    class data:  # noqa: N801
        train_split = "train"
        eval_split = "validation"
        max_train_samples = None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(["--1", "-1", "2"], ("--1", "-1", "2")), (["-1", "10", "2"], ("-1", "2", "10"))],
)
def test_labels_that_are_not_numbers_sort_as_text(labels, expected):
    raw = data.RawData(
        train=datasets.Dataset.from_dict({"text": ["a"] * 3, "label": labels}),
        eval=datasets.Dataset.from_dict({"text": ["a"], "label": labels[:1]}),
        fingerprint="x",
    )
    assert classification.label_names(raw, FakeSpec) == expected


def test_one_label_is_refused():
    raw = data.RawData(
        train=datasets.Dataset.from_dict({"text": ["a"] * 3, "label": ["a"] * 3}),
        eval=datasets.Dataset.from_dict({"text": ["a"], "label": ["a"]}),
        fingerprint="x",
    )
    message = "data.label_column: 1 label in split 'train' \\('a'\\); classification needs at least 2"
    with pytest.raises(SpecError, match=message):
        classification.label_names(raw, FakeSpec)


EMPTY = {"text": "x", "intent": "a"}


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        (  # the row is the file's (the check used to run on the subsampled split, and named no row)
            [{"text": "x", "intent": None}, {"text": "y", "intent": ["a"]}],
            None,
            "data.label_column: row 2 of split 'train' \\(train.jsonl\\) has a list in column 'intent' "
            "\\(\\['a'\\]\\); one label per row: multi-label classification is not supported$",
        ),
        # A list or a mapping where text is expected was trained on as its repr; the message read
        # "a 'text' of split 'train' is a dict (...)"
        (
            [{"text": {"a": 1}, "intent": "a"}],
            None,
            "data.text_column: row 1 of split 'train' \\(train.jsonl\\) has a dict in column 'text' "
            "\\({'a': 1}\\), not text$",
        ),
        (
            [{"p": ["x"], "c": "z"}, {"p": ["x", "y"], "c": "z"}],
            {"prompt": "p", "completion": "c"},
            "data.prompt_column: row 1 of split 'train' \\(train.jsonl\\) has a list in column 'p' "
            "\\(\\['x'\\]\\), not text$",
        ),
        # A list in some rows only: Arrow refused the file, and the message was under data.path
        # ("cannot read train.jsonl as jsonl: ('Expected bytes, got a 'list' object', 'Conversion failed for
        # column text with type object')")
        (
            [{"text": "x", "intent": "a"}, {"text": ["x", "y"], "intent": "b"}],
            None,
            "data.text_column: row 2 of split 'train' \\(train.jsonl\\) has a list in column 'text' "
            "\\(\\['x', 'y'\\]\\), not text$",
        ),
        (
            [{"text": "x", "intent": "a"}, {"text": "y", "intent": None}, {"text": "z", "intent": ["b"]}],
            None,
            "data.label_column: row 3 of split 'train' \\(train.jsonl\\) has a list in column 'intent' "
            "\\(\\['b'\\]\\); one label per row: multi-label classification is not supported$",
        ),
        (
            [{"m": '[{"role": "user", "content": "hi"}]'}, {"m": [{"role": "user", "content": "hi"}]}],
            {"messages": "m"},
            "data.messages_column: row 2 of split 'train' \\(train.jsonl\\) has a list in column 'm' "
            "\\(.*\\) and other rows do not: give every row in one form; each row must be",
        ),
        (
            [{"text ": "x", "my label": "a"}],
            None,
            "data.text_column: no column 'text' in split 'train'; columns: 'text ', 'my label'$",
        ),
        (
            [{"p": "x", "c": ""}, {"p": "y", "c": " "}],
            {"prompt": "p", "completion": "c"},
            "data.completion_column: no row of split 'train' has a non-empty 'c': nothing to learn or evaluate",
        ),
        (
            [{"s": "x", "t": None}],
            {"source": "s", "target": "t"},
            "data.target_column: no row of split 'train' has a non-empty 't'",
        ),
        (
            [{"m": [{"role": "user", "content": "hi"}]}],
            {"messages": "m"},
            "data.messages_column: no row of split 'train' has an assistant turn with text",
        ),
        (
            [{"m": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, {"m": []}],
            {"messages": "m"},
            "data.messages_column: row 2 of split 'train' \\(train.jsonl\\) is an empty list; each row must be",
        ),
    ],
)
def test_rows_that_cannot_train_are_refused_naming_the_column(tmp_path, rows, columns, message):
    folder = write_rows(tmp_path / "d", {"train": rows, "validation": rows})
    with pytest.raises(SpecError, match=message):
        data.load_raw(spec_for(folder), "s.yaml", columns)


def test_an_eval_split_with_nothing_to_evaluate_is_named(tmp_path):
    chat = [{"m": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]
    folder = write_rows(tmp_path / "d", {"train": chat, "validation": [{"m": [{"role": "user", "content": "x"}]}]})
    message = "data.messages_column: no row of split 'validation' has an assistant turn"
    with pytest.raises(SpecError, match=message):
        data.load_raw(spec_for(folder), "s.yaml", {"messages": "m"})


def test_null_content_is_an_empty_message(tmp_path):
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "yo"},
    ]
    folder = write_rows(tmp_path / "d", {"train": [{"m": turns}], "validation": [{"m": turns}]})
    raw = data.load_raw(spec_for(folder), "s.yaml", {"messages": "m"})
    assert [m["content"] for m in raw.train["messages"][0]] == ["hi", "", "42", "yo"]


CHAT = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": None},
    {"role": "assistant", "content": "yo"},
]


def write_csv(folder, cells: list[str]):
    """train.csv and validation.csv with one column `m` of these cells."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation"):
        pd.DataFrame({"id": range(len(cells)), "m": cells}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def test_chats_as_json_text_in_a_csv_are_read_as_lists_of_messages(tmp_path):
    raw = data.load_raw(spec_for(write_csv(tmp_path / "csv", [json.dumps(CHAT)] * 2)), "s.yaml", {"messages": "m"})
    assert raw.train["messages"][1] == [
        {"role": "user", "content": "hi"},
        *[{"role": "assistant", "content": c} for c in ("", "yo")],
    ]
    as_lists = write_rows(tmp_path / "jsonl", {"train": [{"m": CHAT}] * 2, "validation": [{"m": CHAT}] * 2})
    assert raw.fingerprint == data.load_raw(spec_for(as_lists), "s.yaml", {"messages": "m"}).fingerprint


def test_a_csv_whose_one_column_is_the_chat_is_read(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for split in ("train", "validation"):
        pd.DataFrame({"m": [json.dumps(CHAT)] * 3}).to_csv(folder / f"{split}.csv", index=False)
    raw = data.load_raw(spec_for(folder), "s.yaml", {"messages": "m"})
    assert len(raw.train) == 3 and raw.train["messages"][0][0] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("cell", "found"),
    [
        (
            '[{"role": "user", "content": "hi"}',
            """is '[{"role": "user", "content": "hi"}', text that is not JSON (Expecting""",
        ),
        ("", "is '', text that is not JSON ("),
        (
            '{"role": "user", "content": "hi"}',
            """is '{"role": "user", "content": "hi"}', JSON text of a dict, not of a list""",
        ),
        ("[]", "is an empty list"),
        ('[{"content": "hi"}]', "has a message without a role: {'content': 'hi'}"),
    ],
)
def test_a_csv_chat_that_is_not_a_list_of_messages_as_json_is_refused_naming_the_file_and_row(tmp_path, cell, found):
    folder = write_csv(tmp_path / "csv", [json.dumps(CHAT), cell])
    with pytest.raises(SpecError) as caught:
        data.load_raw(spec_for(folder), "s.yaml", {"messages": "m"})
    message = str(caught.value)
    assert message.startswith("s.yaml: data.messages_column: row 2 of split 'train' (train.csv) ")
    assert found in message and "\n" not in message
    assert message.endswith("each row must be a non-empty list of {role, content} messages, or that list as JSON text")


def test_a_missing_eval_split_points_to_eval_fraction(tmp_path):
    folder = write_rows(tmp_path / "d", {"train": INTENT_ROWS})
    with pytest.raises(SpecError, match="no split 'validation' .*; splits: train; .* data.eval_fraction"):
        data.load_raw(spec_for(folder), "s.yaml")
