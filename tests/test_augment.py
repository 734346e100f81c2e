"""Training-set augmentation: what each operation does, seeding, train-only, inputs-only, the study file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import optuna
import pytest

from hpsearch import cli
from hpsearch.data import augment
from hpsearch.orchestration import preflight
from hpsearch.spec import SpecError, load_spec, parse_spec
from hpsearch.tasks import causal_lm, classification

from .test_causal_lm import lm_study, write_pairs

TEXT = "please reset my password now\nthanks  a lot"
ALL_OPS = list(augment.OPS)


def words(text: str) -> list[str]:
    return text.split()


def edit_distance_is_one(a: str, b: str) -> bool:
    """One character replaced, inserted or deleted."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return len(long) - len(short) == 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


# --- the operations ---------------------------------------------------------------------------------


def test_word_deletion_drops_words_in_order_and_never_all():
    out = augment.word_deletion(TEXT, 0.5, random.Random(0))
    kept = iter(words(TEXT))
    assert 1 <= len(words(out)) < len(words(TEXT))
    assert all(word in kept for word in words(out))  # a subsequence: order kept
    for seed in range(20):  # probability 1 would drop everything: one word stays
        assert len(words(augment.word_deletion(TEXT, 1.0, random.Random(seed)))) == 1
    assert augment.word_deletion("alone", 1.0, random.Random(0)) == "alone"


def test_word_swap_swaps_neighbours_and_keeps_the_whitespace():
    assert augment.word_swap("a b c d e", 1.0, random.Random(0)) == "b a d c e"  # each pair once, left to right
    assert augment.word_swap("a\nb  c", 1.0, random.Random(0)) == "b\na  c"  # the gaps stay where they were
    out = augment.word_swap(TEXT, 0.5, random.Random(1))
    before, after = words(TEXT), words(out)
    assert out != TEXT and sorted(after) == sorted(before)
    assert all(abs(before.index(w) - i) <= 1 for i, w in enumerate(after))


def test_char_noise_gives_words_one_typo_each():
    out = augment.char_noise(TEXT, 1.0, random.Random(0))
    assert len(words(out)) == len(words(TEXT))
    assert all(edit_distance_is_one(a, b) for a, b in zip(words(TEXT), words(out), strict=True))
    assert [c for c in out if c.isspace()] == [c for c in TEXT if c.isspace()]
    some = augment.char_noise(TEXT, 0.3, random.Random(0))
    changed = sum(a != b for a, b in zip(words(TEXT), words(some), strict=True))
    assert 0 < changed < len(words(TEXT))


def test_truncation_keeps_a_prefix_of_at_least_half_the_words():
    n = len(words(TEXT))
    lengths = set()
    for seed in range(30):
        out = augment.truncation(TEXT, 1.0, random.Random(seed))
        assert TEXT.startswith(out)
        lengths.add(len(words(out)))
    assert lengths <= set(range((n + 1) // 2, n)) and len(lengths) > 1  # random lengths, half to all but one
    assert augment.truncation("alone", 1.0, random.Random(0)) == "alone"
    kept = [augment.truncation(TEXT, 0.3, random.Random(seed)) == TEXT for seed in range(200)]
    assert 0.55 < sum(kept) / len(kept) < 0.85  # cut with probability 0.3 per text


@pytest.mark.parametrize("op", ALL_OPS)
def test_probability_zero_changes_nothing(op):
    assert augment.OPS[op](TEXT, 0.0, random.Random(0)) == TEXT


# --- seeding -------------------------------------------------------------------------------------------


def split_of(n: int = 40):
    """n six-word texts of the intents' vocabulary, as a classification split."""
    import datasets

    from .conftest import FILLER, INTENTS

    vocabulary = [w for ws in INTENTS.values() for w in ws] + FILLER
    rng = random.Random(0)
    texts = [" ".join(rng.choice(vocabulary) for _ in range(6)) for _ in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "label": [str(i % 3) for i in range(n)]})


def test_same_seed_same_rows_other_seed_other_rows_probability_zero_none():
    split = split_of()
    first, changed = augment.augment_split(split, classification.augment_inputs, ALL_OPS, 0.2, seed=42)
    again, _ = augment.augment_split(split, classification.augment_inputs, ALL_OPS, 0.2, seed=42)
    other, _ = augment.augment_split(split, classification.augment_inputs, ALL_OPS, 0.2, seed=43)
    assert first["text"] == again["text"] and first["text"] != other["text"]
    assert changed == sum(a != b for a, b in zip(first["text"], split["text"], strict=True)) > 0
    assert first["label"] == split["label"]  # never what the model predicts
    same, none = augment.augment_split(split, classification.augment_inputs, ALL_OPS, 0.0, seed=42)
    assert same["text"] == split["text"] and none == 0


SCRIPT = """
import json, sys
from hpsearch.data import augment
texts = json.loads(sys.argv[1])
print(json.dumps([augment.augment_text(t, augment.OPS, 0.25, augment.row_rng(7, 0.25, list(augment.OPS), i))
                  for i, t in enumerate(texts)]))
"""


@pytest.mark.slow
def test_the_same_rows_in_another_process_whatever_its_hash_seed():
    texts = [TEXT, "where is my parcel please", "i need a refund for the order today"] * 3
    here = [augment.augment_text(t, ALL_OPS, 0.25, augment.row_rng(7, 0.25, ALL_OPS, i)) for i, t in enumerate(texts)]
    assert here != texts
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, json.dumps(texts)], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == here


# --- the study file ------------------------------------------------------------------------------------

OPS_SECTION = {"ops": ["word_deletion", "char_noise"], "probability": 0.2}
SEARCHED = {"type": "float", "low": 0.0, "high": 0.3}


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"augmentation": {"ops": ["word_dropout"], "probability": 0.1}}, "augmentation.ops", "'word_dropout' is not"),
        ({"augmentation": {"ops": ["word_swap", "word_swap"], "probability": 0.1}}, "augmentation.ops", "twice"),
        ({"augmentation": {"ops": ["word_swap"], "probability": 1.5}}, "augmentation.probability", "[0, 1]"),
        ({"augmentation": {"ops": ["word_swap"], "probability": -0.1}}, "augmentation.probability", "[0, 1]"),
        ({"augmentation": {"ops": ["word_swap"]}}, "augmentation.probability", "is required with ops"),
        ({"augmentation": {"probability": 0.1}}, "augmentation.ops", "is empty"),
        ({"augmentation": {"ops": ["word_swap"], "p": 0.1}}, "augmentation.p", "unknown key"),
        ({"search__augmentation_probability": SEARCHED}, "search.augmentation_probability", "needs augmentation.ops"),
        (
            {"search__augmentation_probability": SEARCHED, "augmentation": {"ops": []}},
            "search.augmentation_probability",
            "needs augmentation.ops",
        ),
        (
            {"search__augmentation_probability": SEARCHED, "augmentation": OPS_SECTION},
            "augmentation.probability",
            "either searched or fixed",
        ),
        (
            {"search__augmentation_probability": {"type": "float", "low": 0.0, "high": 1.5}, "augmentation": {}},
            "search.augmentation_probability",
            "[0, 1]",
        ),
    ],
)
def test_bad_augmentation_settings_exit_2_naming_the_field(make_study, capsys, changes, field, message):
    path = make_study(**changes)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field and message in caught.value.message
    assert cli.main(["validate", str(path)]) == 2
    assert f"{field}: " in capsys.readouterr().err
    assert not (path.parent / "tiny.db").exists()


def test_the_stored_spec_reads_back_fixed_or_searched(make_study):
    for changes in (
        {},
        {"augmentation": OPS_SECTION},
        {"augmentation": {"ops": ["truncation"]}, "search__augmentation_probability": SEARCHED},
    ):
        path = make_study(**changes)
        spec = load_spec(path)
        stored = {k: v for k, v in spec.to_dict().items() if k != "source"}  # as the study stores it
        assert parse_spec(json.loads(json.dumps(stored)), path).augmentation == spec.augmentation
    assert spec.to_dict()["augmentation"] == {"ops": ["truncation"], "probability": None}
    assert spec.augmentation.probability_for({"augmentation_probability": 0.25}) == 0.25
    assert load_spec(make_study()).augmentation.ops == ()


# --- in trials -----------------------------------------------------------------------------------------


def test_a_trial_trains_on_augmented_rows_and_evaluates_on_the_untouched_eval_split(make_study, monkeypatch):
    from hpsearch.training import attempt  # the module that builds a pass's Trainer

    seen = []

    def capture(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        seen.append(trainer)
        return trainer

    make_trainer = attempt.make_trainer
    monkeypatch.setattr(attempt, "make_trainer", capture)
    path = make_study(augmentation={"ops": ALL_OPS, "probability": 0.3}, budget={"n_trials": 1})
    assert cli.main(["run", str(path), "--quiet"]) == 0
    spec = load_spec(path)
    checked = preflight.check(spec)
    plain = classification.prepare(spec, checked.raw, checked.tokenizer)
    (trainer,) = seen
    assert trainer.eval_dataset["input_ids"] == plain.evaluated["input_ids"]  # the eval split: never augmented
    assert trainer.train_dataset["labels"] == plain.train["labels"]
    changed = sum(a != b for a, b in zip(trainer.train_dataset["input_ids"], plain.train["input_ids"], strict=True))
    (done,) = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}").trials
    assert done.state.name == "COMPLETE"
    assert done.user_attrs["augmentation"] == {"ops": ALL_OPS, "probability": 0.3, "seed": 42, "rows_changed": changed}
    assert changed > len(plain.train) // 2
    # a resume must keep the operations
    assert cli.main(["run", str(path), "--set", "augmentation.ops=[word_swap]", "--n-trials", "2", "--quiet"]) == 2


@pytest.mark.parametrize("chat", [False, True])
def test_causal_lm_augments_prompts_or_user_turns_never_completions(tmp_path, tiny_causal_lm, chat):
    data = write_pairs(tmp_path / "pairs", chat=chat)
    changes = {"data": {"path": str(data), "messages_column": "conversation", "max_length": 48}} if chat else {}
    path = lm_study(tmp_path, tiny_causal_lm, data, augmentation={"ops": ALL_OPS, "probability": 0.4}, **changes)
    spec = load_spec(path)
    checked = preflight.check(spec)
    plain = causal_lm.prepare(spec, checked.raw, checked.tokenizer)
    augmented, record = augment.for_trial(spec, causal_lm, checked.raw, checked.tokenizer, (), {}, seed=3)
    assert record["rows_changed"] > len(plain.train) // 2
    for before, after in zip(plain.train, augmented, strict=True):
        learnt = [[t for t in row["labels"] if t != -100] for row in (before, after)]
        assert learnt[0] == learnt[1] and learnt[0]  # the completion's tokens, all of them, unchanged
    assert sum(a != b for a, b in zip(plain.train["input_ids"], augmented["input_ids"], strict=True)) > 0


def test_causal_lm_packs_after_augmenting(tmp_path, tiny_causal_lm):
    path = lm_study(
        tmp_path, tiny_causal_lm, write_pairs(tmp_path / "pairs"), data__packing=True, augmentation=OPS_SECTION
    )
    spec = load_spec(path)
    checked = preflight.check(spec)
    augmented, record = augment.for_trial(spec, causal_lm, checked.raw, checked.tokenizer, (), {}, seed=3)
    assert {len(ids) for ids in augmented["input_ids"]} == {48} and record["rows_changed"] > 0


@pytest.mark.slow
def test_a_sweep_searching_the_probability_records_it_and_train_reproduces_it(make_study, capsys, tmp_path):
    path = make_study(
        augmentation={"ops": ["word_deletion", "word_swap"]},
        search__augmentation_probability={"type": "float", "low": 0.1, "high": 0.3},
        search__per_device_train_batch_size=[16],
        train__num_train_epochs=1,
        objective={"metric": "loss"},  # continuous: training on other rows would not reproduce it to 1e-6
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path.parent / 'tiny.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:
        record = t.user_attrs["augmentation"]
        assert record["probability"] == t.params["augmentation_probability"] and record["rows_changed"] > 0
        assert record["ops"] == ["word_deletion", "word_swap"] and record["seed"] == 42
        assert "augmentation_probability" not in t.user_attrs["training_arguments"]
    best = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(best)]) == 0
    assert cli.main(["train", str(best), "--out", str(tmp_path / "model"), "--tolerance", "1e-6"]) == 0
    result = json.loads((tmp_path / "model" / "hpsearch_train.json").read_text())
    best_trial = next(t for t in trials if t.number == result["trial"])
    assert result["augmentation"] == best_trial.user_attrs["augmentation"] and result["matches"] is True
