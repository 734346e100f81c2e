"""The causal-lm task: completion-only labels, chat templates, packing, padding."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from hpsearch.tasks import causal_lm, chat_template


@pytest.fixture(scope="module")
def tokenizer(tiny_causal_lm):
    return AutoTokenizer.from_pretrained(tiny_causal_lm)


def test_a_pair_is_prompt_then_completion_and_only_the_completion_is_learnt(tokenizer):
    row = causal_lm.encode_pair(tokenizer, "where is my parcel", " it shipped today", max_length=64)
    prompt = tokenizer("where is my parcel", add_special_tokens=False)["input_ids"]
    completion = tokenizer(" it shipped today", add_special_tokens=False)["input_ids"]
    assert row["input_ids"] == prompt + completion + [tokenizer.eos_token_id]
    assert row["labels"] == [-100] * len(prompt) + completion + [tokenizer.eos_token_id]
    assert row["attention_mask"] == [1] * len(row["input_ids"])


def test_a_long_pair_loses_the_start_of_its_prompt_first(tokenizer):
    prompt = " ".join(["please help"] * 30)
    row = causal_lm.encode_pair(tokenizer, prompt, " refund", max_length=16)
    completion = tokenizer(" refund", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert len(row["input_ids"]) == 16
    assert row["input_ids"][-len(completion) :] == completion  # the whole completion is kept
    assert row["labels"] == [-100] * (16 - len(completion)) + completion


def test_every_assistant_turn_of_a_chat_is_learnt_and_nothing_else(tokenizer):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "where is my parcel"},
        {"role": "assistant", "content": "it shipped"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "sure"},
    ]
    row = chat_template.encode_messages(tokenizer, messages, max_length=128)
    learnt = tokenizer.decode([t for t in row["labels"] if t != -100])
    assert learnt == "it shipped<|end|>sure<|end|>"
    assert tokenizer.decode(row["input_ids"]) == tokenizer.apply_chat_template(messages, tokenize=False)


def test_a_chat_needs_a_chat_template(tokenizer):
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        chat_template.encode_messages(plain, [{"role": "user", "content": "hi"}], max_length=32)


def test_packing_fills_blocks_and_keeps_labels_with_their_tokens():
    rows = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "labels": [[-100, 2, 3], [-100, 5], [-100, -100, 8, 9]]}
    packed = causal_lm.pack(rows, block=4)
    assert packed["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]  # 9 left over: dropped
    assert packed["labels"] == [[-100, 2, 3, -100], [5, -100, -100, 8]]
    assert packed["attention_mask"] == [[1] * 4, [1] * 4]


def test_the_collator_pads_ids_with_the_pad_token_and_labels_with_minus_100(tokenizer):
    assert tokenizer.pad_token_id is None  # as decoder tokenizers ship
    collate = causal_lm.collator(tokenizer)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    batch = collate(
        [
            causal_lm.encode_pair(tokenizer, "refund", " sure", 32),
            causal_lm.encode_pair(tokenizer, "where is my parcel please", " it shipped today", 32),
        ]
    )
    short = len(causal_lm.encode_pair(tokenizer, "refund", " sure", 32)["input_ids"])
    width = batch["input_ids"].shape[1]
    assert batch["labels"][0, short:].tolist() == [-100] * (width - short)
    assert batch["attention_mask"][0, short:].tolist() == [0] * (width - short)
    assert batch["input_ids"][0, short:].tolist() == [tokenizer.pad_token_id] * (width - short)


def test_perplexity_is_the_exponential_of_the_eval_loss():
    assert causal_lm.derived_metrics({"eval_loss": 2.0}) == {"eval_perplexity": pytest.approx(7.389056)}
    with_se = causal_lm.derived_metrics({"eval_loss": 2.0, "eval_loss_se": 0.1})
    assert with_se["eval_perplexity_se"] == pytest.approx(0.7389056)
    assert causal_lm.derived_metrics({}) == {}


def test_a_pair_goes_through_the_chat_template_when_the_tokenizer_has_one(tokenizer):
    row = causal_lm.encode_row(tokenizer, {"prompt": "refund", "completion": "sure"}, 64, chat=False)
    assert tokenizer.decode(row["input_ids"]) == "<|user|>refund<|end|><|assistant|>sure<|end|>"
    assert tokenizer.decode([t for t in row["labels"] if t != -100]) == "sure<|end|>"
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    raw = causal_lm.encode_row(plain, {"prompt": "refund", "completion": " sure"}, 64, chat=False)
    assert raw == causal_lm.encode_pair(plain, "refund", " sure", 64)


# --- the task in real sweeps ------------------------------------------------------------------------

ANSWERS = {
    "track": "it shipped and arrives soon",
    "refund": "your refund is on its way",
    "password": "use the reset link we sent",
    "cancel": "your order is cancelled",
}


def write_pairs(folder, n_train: int = 48, n_eval: int = 16, chat: bool = False):
    """Support questions (the intents' words) and the canned answer of their intent."""
    from .conftest import write_requests

    def row(intent: str, question: str) -> dict:
        if chat:
            return {
                "conversation": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": ANSWERS[intent]},
                ]
            }
        return {"question": question, "answer": ANSWERS[intent]}

    return write_requests(folder, row, n_train, n_eval)


def lm_study(tmp_path, model, data_dir, /, **changes):
    import yaml

    study = {
        "name": "lm",
        "task": "causal-lm",
        "model": {"name_or_path": str(model)},
        "data": {"path": str(data_dir), "prompt_column": "question", "completion_column": "answer", "max_length": 48},
        "search": {"learning_rate": [1e-3, 5e-3], "per_device_train_batch_size": [8]},
        "evaluation": {"every": 0.25},
        "train": {"num_train_epochs": 2, "use_cpu": True},
        "sampler": {"type": "grid"},
        "pruner": {"type": "none"},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            study[section] = {**study.get(section, {}), name: value}
        else:
            study[key] = value
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_causal_lm_sweep_records_loss_and_perplexity_exports_and_retrains(tmp_path, tiny_causal_lm):
    import json
    import math

    import optuna

    from hpsearch import cli

    path = lm_study(tmp_path, tiny_causal_lm, write_pairs(tmp_path / "pairs"))
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="lm", storage=f"sqlite:///{tmp_path / 'lm.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        curve = t.user_attrs["curve"]
        assert len(curve) >= 4 and t.value == curve[-1]["eval_loss"]
        for point in curve:
            assert point["eval_perplexity"] == pytest.approx(math.exp(point["eval_loss"]))
            # the loss's standard error (what the noise-aware pruner weighs a gap against), and perplexity's
            assert 0 < point["eval_loss_se"] < point["eval_loss"]
            assert point["eval_perplexity_se"] == pytest.approx(point["eval_perplexity"] * point["eval_loss_se"])
        assert curve[-1]["eval_loss"] < curve[0]["eval_loss"]  # it learns the answers
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    assert cli.main(["train", str(out), "--out", str(tmp_path / "model"), "--tolerance", "1e-3"]) == 0
    assert json.loads((tmp_path / "model" / "hpsearch_train.json").read_text())["matches"] is True
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "model").config.model_type == "gpt2"


def test_chat_data_trains_on_the_assistant_turns(tmp_path, tiny_causal_lm):
    import optuna

    from hpsearch import cli
    from hpsearch.orchestration import preflight
    from hpsearch.spec import load_spec
    from hpsearch.tasks import causal_lm as task

    data = write_pairs(tmp_path / "chats", chat=True)
    path = lm_study(
        tmp_path, tiny_causal_lm, data, data={"path": str(data), "messages_column": "conversation", "max_length": 48}
    )
    spec = load_spec(path)
    checked = preflight.check(spec)
    prepared = task.prepare(spec, checked.raw, checked.tokenizer)
    first = prepared.train[0]
    learnt = checked.tokenizer.decode([t for t in first["labels"] if t != -100])
    assert learnt in {f"{answer}<|end|>" for answer in ANSWERS.values()}
    assert cli.main(["run", str(path), "--quiet", "--n-trials", "1"]) == 0
    trials = optuna.load_study(study_name="lm", storage=f"sqlite:///{tmp_path / 'lm.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"]


def test_packing_fills_every_train_row_to_max_length(tmp_path, tiny_causal_lm):
    from hpsearch.orchestration import preflight
    from hpsearch.spec import load_spec
    from hpsearch.tasks import causal_lm as task

    data = write_pairs(tmp_path / "pairs")
    path = lm_study(tmp_path, tiny_causal_lm, data, data__packing=True)
    spec = load_spec(path)
    checked = preflight.check(spec)
    prepared = task.prepare(spec, checked.raw, checked.tokenizer)
    unpacked = sum(
        len(task.encode_row(checked.tokenizer, row, 48, chat=False)["input_ids"]) for row in checked.raw.train
    )
    assert {len(ids) for ids in prepared.train["input_ids"]} == {48}
    assert len(prepared.train) == unpacked // 48
    assert len(prepared.eval) == len(checked.raw.eval)  # the eval split is not packed
    # ... nor reordered: Trainer's eval loss is a mean of batch means, which another grouping would move
    assert prepared.evaluated is prepared.eval


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (
            {"objective": {"metric": "accuracy"}},
            "objective.metric",
            "'accuracy' is not allowed; allowed: loss, perplexity",
        ),
        ({"data__text_column": "q"}, "data.text_column", "is for task sequence-classification, not causal-lm"),
        (
            {"data__messages_column": "conversation"},
            "data.prompt_column",
            "set messages_column or prompt/completion columns, not both",
        ),
        ({"data__prompt_column": "nope"}, "data.prompt_column", "no column 'nope' in split 'train'"),
    ],
)
def test_bad_causal_lm_settings_exit_2_naming_the_field(tmp_path, tiny_causal_lm, capsys, changes, field, message):
    from hpsearch import cli

    path = lm_study(tmp_path, tiny_causal_lm, write_pairs(tmp_path / "pairs"), **changes)
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: {message}" in err
    assert not (tmp_path / "lm.db").exists()


def test_a_chat_study_s_stored_spec_with_the_default_pair_columns_reads_back(tmp_path, tiny_causal_lm):
    """An export's manifest (and any stored spec) writes every data key, the pair columns' defaults beside
    messages_column: `hpsearch train` parses it again and must not take them for columns the user gave."""
    from hpsearch.spec import load_spec

    data = {"path": str(tmp_path), "messages_column": "conversation", "max_length": 48}
    stored = {**data, "prompt_column": "prompt", "completion_column": "completion"}
    spec = load_spec(lm_study(tmp_path, tiny_causal_lm, tmp_path, data=stored))
    assert spec.data.messages_column == "conversation"
    assert (
        spec.to_dict()["data"] == load_spec(lm_study(tmp_path, tiny_causal_lm, tmp_path, data=data)).to_dict()["data"]
    )


def test_packing_is_refused_for_classification(make_study, capsys):
    from hpsearch import cli

    path = make_study(data__packing=True)
    assert cli.main(["validate", str(path)]) == 2
    assert "data.packing: is for task causal-lm, not sequence-classification" in capsys.readouterr().err


@pytest.mark.parametrize("lora_settings", [None, {"r": 2, "alpha": 4.0, "dropout": 0.0, "target_modules": None}])
def test_a_checkpoint_saved_in_bf16_trains_fp32_weights(tmp_path, tiny_causal_lm, lora_settings):
    """transformers loads a checkpoint in its saved dtype; AdamW's small updates would round away in bf16."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from hpsearch.tasks import causal_lm
    from hpsearch.tasks.task_data import TaskData
    from hpsearch.training import trainer as trainer_module

    folder = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_causal_lm, dtype=torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_causal_lm).save_pretrained(folder)
    assert AutoModelForCausalLM.from_pretrained(folder).dtype == torch.bfloat16  # transformers' own default
    data = TaskData(train=[], eval=[], labels=(), fingerprint="")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    trainer = trainer_module.make_trainer(causal_lm, data, tokenizer, str(folder), args, lora_settings=lora_settings)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}


def test_chats_for_a_tokenizer_without_a_chat_template_are_refused_before_anything_is_written(
    tmp_path, tiny_causal_lm, capsys
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hpsearch import cli

    plain = tmp_path / "plain"
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    AutoModelForCausalLM.from_pretrained(tiny_causal_lm).save_pretrained(plain)
    data = write_pairs(tmp_path / "chats", chat=True)
    path = lm_study(
        tmp_path, plain, data, data={"path": str(data), "messages_column": "conversation", "max_length": 48}
    )
    assert cli.main(["run", str(path)]) == 2
    assert "model.name_or_path: the tokenizer has no chat template" in capsys.readouterr().err
    assert not (tmp_path / "lm.db").exists()


@pytest.mark.slow
def test_a_causal_lm_trial_is_pruned_on_its_loss_against_the_losss_standard_error(tmp_path, tiny_causal_lm):
    # Trial 0 learns the answers; trial 1's learning rate cannot move the loss: the median pruner weighs
    # the gap against the eval loss's standard error (from per-row token losses) and prunes it.
    import optuna

    from hpsearch import cli

    def study(low: float) -> list[str]:
        return ["--set", f"search.learning_rate.low={low}", "--set", f"search.learning_rate.high={low * 1.01}"]

    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        search={"learning_rate": {"type": "float", "low": 5e-3, "high": 5.05e-3}},
        sampler={"type": "random", "seed": 0},
        pruner={"type": "median", "n_startup_trials": 1, "tolerance_se": 1},
        budget={"n_trials": 1},
    )
    assert cli.main(["run", str(path), "--quiet", *study(5e-3)]) == 0
    assert cli.main(["run", str(path), "--quiet", *study(1e-9), "--n-trials", "2"]) == 0
    full, pruned = optuna.load_study(study_name="lm", storage=f"sqlite:///{tmp_path / 'lm.db'}").trials
    assert (full.state.name, pruned.state.name) == ("COMPLETE", "PRUNED")
    evidence = pruned.user_attrs["prune_evidence"]
    assert evidence["uncertainty"] == pytest.approx(pruned.user_attrs["curve"][-1]["eval_loss_se"], abs=1e-6)
    assert evidence["value"] - evidence["bar"] > evidence["uncertainty"] > 0


def test_packing_fewer_tokens_than_a_block_is_refused_before_anything_is_written(tmp_path, tiny_causal_lm, capsys):
    from hpsearch import cli

    data = write_pairs(tmp_path / "pairs", n_train=3, n_eval=2)
    path = lm_study(tmp_path, tiny_causal_lm, data, data__packing=True, data__max_length=128)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: data.packing: 3 train rows make 0 blocks of 128 tokens (they hold " in err
    assert "set data.max_length to" in err and err.count("\n") == 1
    assert not (tmp_path / "lm.db").exists()


# A template in Mistral's shape: no system turn, user and assistant turns alternating, else raise_exception.
STRICT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% elif (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def with_template(folder, model, template: str):
    """A copy of MODEL whose tokenizer has TEMPLATE as its chat template."""
    from transformers import AutoModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    AutoModelForCausalLM.from_pretrained(model).save_pretrained(folder)
    return folder


USER, ASSISTANT = {"role": "user", "content": "where parcel"}, {"role": "assistant", "content": "it shipped"}


@pytest.mark.parametrize(
    ("strict", "split", "chat", "message"),
    [
        (True, "train", [USER, USER, ASSISTANT], "(roles 'user, user, assistant'): Conversation roles must alternate"),
        (
            True,
            "validation",
            [{"role": "system", "content": "be brief"}, USER, ASSISTANT],
            "'be brief' (roles 'system, user, assistant'): System role not supported",
        ),
        (
            False,
            "train",
            [ASSISTANT, USER, ASSISTANT],
            "'it shipped' (roles 'assistant, user, assistant'): its first turn is the assistant's",
        ),
    ],
)
def test_a_chat_the_chat_template_refuses_is_the_data_s_error_before_anything_is_written(
    tmp_path, tiny_causal_lm, capsys, strict, split, chat, message
):
    """Row 5 of a split: past the two train rows preflight encodes, found by a chat of each order of roles."""
    import json

    from hpsearch import cli

    model = with_template(tmp_path / "strict", tiny_causal_lm, STRICT_TEMPLATE) if strict else tiny_causal_lm
    data = write_pairs(tmp_path / "chats", chat=True)
    rows = (data / f"{split}.jsonl").read_text().splitlines()
    rows[4] = json.dumps({"conversation": chat})
    (data / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    path = lm_study(
        tmp_path, model, data, data={"path": str(data), "messages_column": "conversation", "max_length": 48}
    )
    capsys.readouterr()  # with_template's loading bars
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: data.messages_column: the chat template refuses the chat starting " in err and message in err
    assert err.count("\n") == 1 and not (tmp_path / "lm.db").exists()


def test_a_template_that_refuses_a_chat_while_encoding_names_the_data_and_one_that_refuses_a_pair_the_model(
    tmp_path, tiny_causal_lm
):
    """encode_split as trials call it (on every row, after preflight): the template's refusal of a chat is keyed
    to the messages column; of a pair (hpsearch's own user and assistant turns), to the model."""
    import datasets

    from hpsearch.spec import SpecError, load_spec

    strict = AutoTokenizer.from_pretrained(with_template(tmp_path / "strict", tiny_causal_lm, STRICT_TEMPLATE))
    path = lm_study(tmp_path, tiny_causal_lm, tmp_path, data={"path": str(tmp_path), "messages_column": "m"})
    chats = datasets.Dataset.from_list([{"messages": [USER, ASSISTANT]}, {"messages": [USER, USER, ASSISTANT]}])
    with pytest.raises(SpecError) as caught:
        causal_lm.encode_split(load_spec(path), chats, strict)
    assert caught.value.field == "data.messages_column"
    assert caught.value.message == (
        "the chat template refuses the chat starting 'where parcel' (roles 'user, user, assistant'): "
        "Conversation roles must alternate user/assistant/user/assistant/..."
    )
    strict.chat_template = "{{ raise_exception('a system turn must come first') }}"
    pairs = datasets.Dataset.from_list([{"prompt": "where parcel", "completion": "it shipped"}])
    with pytest.raises(SpecError) as caught:
        causal_lm.encode_split(load_spec(lm_study(tmp_path, tiny_causal_lm, tmp_path)), pairs, strict)
    assert caught.value.field == "model.name_or_path"
    assert caught.value.message == (
        "its chat template refuses a pair as a user turn and an assistant turn: a system turn must come first"
    )
