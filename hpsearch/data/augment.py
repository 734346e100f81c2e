"""Training-set augmentation against data mismatch: seeded word-level noise on the train split's inputs,
never on the eval split nor on what the model must predict; the same seed gives the same rows anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hpsearch.spec.catalog import AUGMENT_OPS

if TYPE_CHECKING:
    import datasets

    from hpsearch.data.sources import RawData
    from hpsearch.spec import Spec

_PIECE = re.compile(r"(\S+)(\s*)")  # a word and the whitespace after it
_LETTERS = string.ascii_lowercase


def _split(text: str) -> tuple[str, list[str], list[str]]:
    """(leading whitespace, words, the whitespace after each word): joined back, the text as it was,
    so deleting or swapping words keeps newlines and indentation between the others."""
    lead = text[: len(text) - len(text.lstrip())]
    pieces = _PIECE.findall(text)
    return lead, [w for w, _ in pieces], [s for _, s in pieces]


def _join(lead: str, words: list[str], gaps: list[str], tail: str) -> str:
    """Words with their gaps; the last word ends with the original text's trailing whitespace."""
    if not words:
        return lead + tail
    return lead + "".join(w + g for w, g in zip(words[:-1], gaps[:-1], strict=True)) + words[-1] + tail


def word_deletion(text: str, probability: float, rng: random.Random) -> str:
    """Drop each word with `probability`; one word always stays (an empty input teaches nothing)."""
    lead, words, gaps = _split(text)
    if len(words) < 2:
        return text
    kept = [i for i in range(len(words)) if rng.random() >= probability]
    if not kept:
        kept = [rng.randrange(len(words))]
    if len(kept) == len(words):
        return text
    return _join(lead, [words[i] for i in kept], [gaps[i] for i in kept], gaps[-1])


def word_swap(text: str, probability: float, rng: random.Random) -> str:
    """Swap each word with the next one with `probability`; a word moves one place at most."""
    lead, words, gaps = _split(text)
    i, swapped = 0, False
    while i < len(words) - 1:
        if rng.random() < probability:
            words[i], words[i + 1] = words[i + 1], words[i]
            swapped = True
            i += 2
        else:
            i += 1
    return _join(lead, words, gaps, gaps[-1]) if swapped else text


def _typo(word: str, rng: random.Random) -> str:
    """One typing slip at a random place: a wrong letter, an extra letter, or a missing one."""
    kind = rng.choice(("replace", "insert", "delete") if len(word) > 1 else ("replace", "insert"))
    at = rng.randrange(len(word))
    if kind == "replace":
        return word[:at] + rng.choice(_LETTERS.replace(word[at].lower(), "")) + word[at + 1 :]
    if kind == "insert":
        return word[:at] + rng.choice(_LETTERS) + word[at:]
    return word[:at] + word[at + 1 :]


def char_noise(text: str, probability: float, rng: random.Random) -> str:
    """Give each word a typo (a character replaced, inserted or deleted) with `probability`."""
    lead, words, gaps = _split(text)
    noisy = [_typo(w, rng) if rng.random() < probability else w for w in words]
    return text if noisy == words else _join(lead, noisy, gaps, gaps[-1])


def truncation(text: str, probability: float, rng: random.Random) -> str:
    """With `probability`, keep only the text's first words: at least half of them (rounded up), at
    most all but one. Varies the length the model sees while the start, which usually carries the
    topic or the instruction, and most of the content survive; a one-word text stays as it is."""
    lead, words, gaps = _split(text)
    if len(words) < 2 or rng.random() >= probability:
        return text
    keep = rng.randint((len(words) + 1) // 2, len(words) - 1)
    return _join(lead, words[:keep], gaps[:keep], gaps[-1])


# The operations a study file names in `augmentation.ops`, applied in the order it lists them.
# Named once, in hpsearch.spec.catalog (the study file's vocabulary); each name is a function here.
OPS: dict[str, Callable[[str, float, random.Random], str]] = {name: globals()[name] for name in AUGMENT_OPS}


def row_rng(seed: int, probability: float, ops: Sequence[str], index: int) -> random.Random:
    """A generator for one row, from a sha256 of everything that decides its noise: reproducible in
    any process (str hash() is salted per process by PYTHONHASHSEED; sha256 is not)."""
    key = json.dumps([int(seed), float(probability), list(ops), int(index)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def augment_text(text: str, ops: Sequence[str], probability: float, rng: random.Random) -> str:
    """Every operation in turn on one text."""
    for name in ops:
        text = OPS[name](text, probability, rng)
    return text


# A task's augment_inputs(row, change): the row with `change` applied to its input text only.
Inputs = Callable[[dict[str, Any], Callable[[str], str]], dict[str, Any]]


def augment_split(
    split: datasets.Dataset, inputs: Inputs, ops: Sequence[str], probability: float, seed: int
) -> tuple[datasets.Dataset, int]:
    """(the split with each row's input text augmented, how many rows changed). Row i draws from
    row_rng(seed, probability, ops, i), so a row's noise does not depend on the rows before it."""
    import datasets

    rows = split.to_list()
    out = []
    for index, row in enumerate(rows):
        rng = row_rng(seed, probability, ops, index)
        out.append(inputs(row, functools.partial(augment_text, ops=ops, probability=probability, rng=rng)))
    changed = sum(a != b for a, b in zip(rows, out, strict=True))
    return datasets.Dataset.from_list(out, features=split.features), changed


def for_trial(
    spec: Spec, task, raw: RawData, tokenizer, labels: tuple[str, ...], params: dict[str, Any], seed: int
) -> tuple[datasets.Dataset | None, dict[str, Any] | None]:
    """(the trial's tokenized train split, what to record on the trial).

    The split is None when augmentation changes nothing (no ops, or probability 0): the trial trains
    on the cached tokenized split as it is. Otherwise the raw train split is augmented and encoded
    by the task exactly as `prepare` encodes it (packing included). The record is None without ops.
    """
    ops = spec.augmentation.ops
    if not ops:
        return None, None
    probability = spec.augmentation.probability_for(params)
    record = {"ops": list(ops), "probability": probability, "seed": seed, "rows_changed": 0}
    if probability == 0:
        return None, record
    augmented, record["rows_changed"] = augment_split(raw.train, task.augment_inputs, ops, probability, seed)
    return task.encode_train(spec, augmented, tokenizer, labels), record
