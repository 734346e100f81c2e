"""The seq2seq task: source/target encoding, padding, a summarisation sweep scored by ROUGE on
generated outputs, and `hpsearch train` on its export."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
import yaml
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hpsearch import cli
from hpsearch.orchestration import preflight
from hpsearch.spec import load_spec
from hpsearch.tasks import seq2seq

from .conftest import write_requests

# The "summary" of a request: its intent in a few words (learnable by a tiny model in a few steps).
SUMMARIES = {
    "track": "where parcel",
    "refund": "refund money",
    "password": "reset password",
    "cancel": "cancel order",
}


def write_summaries(folder, n_train: int = 64, n_eval: int = 16):
    """Requests (two of an intent's words among filler) and their intent's summary, one file per split."""

    def row(intent: str, request: str) -> dict:
        return {"document": request, "summary": SUMMARIES[intent]}

    return write_requests(folder, row, n_train, n_eval, n_filler=4, shuffle=True)


def s2s_study(tmp_path, model, data_dir, **sections):
    study = {
        "name": "s2s",
        "task": "seq2seq",
        "model": {"name_or_path": str(model)},
        "data": {
            "path": str(data_dir),
            "source_column": "document",
            "target_column": "summary",
            "max_length": 32,
            "max_target_length": 8,
        },
        "generation": {"samples": 8, "max_new_tokens": 6},
        "search": {"learning_rate": [1e-2, 3e-2], "per_device_train_batch_size": [16]},
        "evaluation": {"every": 0.25},
        "train": {"num_train_epochs": 12, "use_cpu": True},
        "sampler": {"type": "grid"},
        "pruner": {"type": "none"},
    }
    study.update(sections)
    path = tmp_path / "s2s.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_seq2seq):
    return AutoTokenizer.from_pretrained(tiny_seq2seq)


def test_sources_are_the_input_and_targets_the_labels(tokenizer):
    batch = {"source": ["please help my parcel tracking today"], "target": ["where parcel"]}
    row = {k: v[0] for k, v in seq2seq.encode(tokenizer, batch, max_length=32, max_target_length=8).items()}
    assert tokenizer.decode(row["input_ids"]) == "<s>please help my parcel tracking today</s>"
    assert tokenizer.decode(row["labels"]) == "<s>where parcel</s>"  # the target only: no source in the labels
    short = seq2seq.encode(tokenizer, {"source": ["a b c d e f g h"], "target": ["where parcel"]}, 4, 3)
    assert len(short["input_ids"][0]) == 4 and short["labels"][0][-1] == tokenizer.eos_token_id
    assert len(short["labels"][0]) == 3  # each side truncated to its own length, EOS kept


def test_padding_counts_no_padded_token_in_the_loss_and_decoder_inputs_follow_the_labels(tokenizer, tiny_seq2seq):
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq).eval()
    rows = [
        seq2seq.encode(tokenizer, {"source": [s], "target": [t]}, 32, 8)
        for s, t in (("refund please", "refund money"), ("where is my parcel tracking now thanks", "where"))
    ]
    rows = [{k: v[0] for k, v in row.items()} for row in rows]
    batch = seq2seq.collator(tokenizer, model)(rows)
    width = batch["labels"].shape[1]
    short = len(rows[1]["labels"])
    assert batch["labels"][1, short:].tolist() == [-100] * (width - short)
    assert batch["input_ids"][0, len(rows[0]["input_ids"]) :].eq(tokenizer.pad_token_id).all()
    # decoder inputs: the start token (EOS for BART), then the labels shifted right, padding for -100
    start, pad = model.config.decoder_start_token_id, tokenizer.pad_token_id
    expected = [start, *rows[1]["labels"], *[pad] * (width - short)][:width]
    assert batch["decoder_input_ids"][1].tolist() == expected
    with torch.no_grad():
        padded = model(**batch).loss
        # the mean over real target tokens of each row alone (no padding at all)
        alone = [model(**{k: torch.tensor([v]) for k, v in row.items()}).loss for row in rows]
        # what Trainer's label smoothing does: labels out of the batch; the decoder inputs stay right
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    counts = [len(row["labels"]) for row in rows]
    assert padded.item() == pytest.approx(
        sum(a * n for a, n in zip(alone, counts, strict=True)).item() / sum(counts), rel=1e-4
    )
    unsmoothed = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
    assert unsmoothed.item() == pytest.approx(padded.item(), rel=1e-5)


@pytest.mark.slow
def test_a_summarisation_sweep_is_scored_by_rouge_on_generated_outputs(tmp_path, tiny_seq2seq, capsys):
    path = s2s_study(tmp_path, tiny_seq2seq, write_summaries(tmp_path / "data"))
    spec = load_spec(path)
    assert (spec.objective.metric, spec.objective.direction) == ("rougeL", "maximize")
    assert spec.generation.metrics == ("rouge1", "rouge2", "rougeL")
    assert cli.main(["validate", str(path)]) == 0
    assert (
        "generation: rouge1, rouge2, rougeL of greedy outputs (at most 6 tokens) for the first 8 eval rows"
        in capsys.readouterr().out
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="s2s", storage=f"sqlite:///{tmp_path / 's2s.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    eval_rows = [json.loads(line) for line in (tmp_path / "data" / "validation.jsonl").read_text().splitlines()]
    for t in study.trials:
        curve = t.user_attrs["curve"]
        assert len(curve) >= 4
        for point in curve:
            assert {"eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL"} <= set(point)
            assert 0 < point["eval_loss_se"] < point["eval_loss"]  # the loss's error, from per-row token losses
            assert 0.0 <= point["eval_rougeL"] <= 1.0
        assert t.value == curve[-1]["eval_rougeL"]
        examples = t.user_attrs["generated_examples"]
        # the same first eval rows for every trial, with the model's outputs beside them
        assert [e["input"] for e in examples] == [r["document"] for r in eval_rows[:3]]
        assert [e["reference"] for e in examples] == [r["summary"] for r in eval_rows[:3]]
        assert all(isinstance(e["output"], str) for e in examples)
    best = study.best_trial.user_attrs["curve"]
    assert best[-1]["eval_rougeL"] > best[0]["eval_rougeL"]  # it learns to write the summaries
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["spec"]["generation"] == {
        "metrics": ["rouge1", "rouge2", "rougeL"],
        "samples": 8,
        "max_new_tokens": 6,
    }

    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    assert cli.main(["train", str(out), "--out", str(tmp_path / "model"), "--tolerance", "1e-6"]) == 0
    result = json.loads((tmp_path / "model" / "hpsearch_train.json").read_text())
    assert result["metric"] == "eval_rougeL" and result["matches"] is True
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "model")
    assert model.config.model_type == "bart"


def test_seq2seq_trains_a_lora_adapter_and_generates_through_it(tmp_path, tiny_seq2seq):
    from hpsearch.training import lora
    from hpsearch.training.generation import generate

    tokenizer = AutoTokenizer.from_pretrained(tiny_seq2seq)
    model = lora.wrap(
        seq2seq.build_model(str(tiny_seq2seq)),
        {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "q_proj,v_proj"},
        seq2seq.PEFT_TASK_TYPE,
    )
    assert type(model).__name__ == "PeftModelForSeq2SeqLM"
    rows = [
        {
            k: v[0]
            for k, v in seq2seq.encode(tokenizer, {"source": ["refund"], "target": ["refund money"]}, 8, 8).items()
        }
    ]
    batch = seq2seq.collator(tokenizer, model)(rows)  # the adapter's model builds the decoder inputs too
    assert batch["decoder_input_ids"][0].tolist() == [model.config.decoder_start_token_id, *rows[0]["labels"][:-1]]
    ids = [tokenizer("refund please")["input_ids"], tokenizer("where my parcel")["input_ids"]]
    outputs = generate(model, tokenizer, ids, max_new_tokens=4, batch_size=2)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"generation": {"metrics": []}}, "objective.metric", "the seq2seq default, rougeL, is not among"),
        ({"objective": {"metric": "perplexity"}}, "objective.metric", "allowed: loss, rouge1, rouge2, rougeL"),
        ({"data": {"path": "data", "prompt_column": "q"}}, "data.prompt_column", "is for task causal-lm, not seq2seq"),
        ({"data": {"path": "data", "source_column": "nope"}}, "data.source_column", "no column 'nope'"),
        ({"data": {"path": "data", "max_target_length": 0}}, "data.max_target_length", "must be > 0"),
        ({"generation": {"samples": 0}}, "generation.samples", "must be > 0"),
    ],
)
def test_bad_seq2seq_settings_exit_2_naming_the_field(tmp_path, tiny_seq2seq, capsys, changes, field, message):
    write_summaries(tmp_path / "data")
    path = s2s_study(tmp_path, tiny_seq2seq, tmp_path / "data", **changes)
    assert cli.main(["validate", str(path)]) == 2
    assert f"{path}: {field}: " in capsys.readouterr().err
    with pytest.raises(Exception, match=message):
        preflight.check(load_spec(path))
    assert not (tmp_path / "s2s.db").exists()


def test_loss_is_a_valid_objective_without_generation(tmp_path, tiny_seq2seq):
    path = s2s_study(
        tmp_path,
        tiny_seq2seq,
        write_summaries(tmp_path / "data"),
        generation={"metrics": []},
        objective={"metric": "loss"},
    )
    spec = load_spec(path)
    assert not spec.generation.enabled and spec.objective.direction == "minimize"
    checked = preflight.check(spec)
    assert seq2seq.prepare(spec, checked.raw, checked.tokenizer).generation is None


def test_augmentation_changes_sources_never_targets(tmp_path, tiny_seq2seq):
    from hpsearch.data import augment

    ops = {"ops": ["word_deletion", "word_swap", "char_noise", "truncation"], "probability": 0.4}
    spec = load_spec(s2s_study(tmp_path, tiny_seq2seq, write_summaries(tmp_path / "data"), augmentation=ops))
    checked = preflight.check(spec)
    plain = seq2seq.prepare(spec, checked.raw, checked.tokenizer)
    augmented, record = augment.for_trial(spec, seq2seq, checked.raw, checked.tokenizer, (), {}, seed=3)
    assert record["rows_changed"] > len(plain.train) // 2
    assert augmented["labels"] == plain.train["labels"]  # every target, token for token
    assert sum(a != b for a, b in zip(augmented["input_ids"], plain.train["input_ids"], strict=True)) > 0


def test_dropout_reaches_the_encoder_decoder_config(tmp_path, tiny_seq2seq):
    from hpsearch.training import models

    path = s2s_study(tmp_path, tiny_seq2seq, write_summaries(tmp_path / "data"))
    study = yaml.safe_load(path.read_text())
    study["model"]["dropout"] = 0.25
    path.write_text(yaml.safe_dump(study))
    spec = load_spec(path)
    checked = preflight.check(spec)
    overrides = models.dropout_overrides(checked.model_for(spec, {}).dropout_attributes, spec.model.dropout_for({}))
    model = seq2seq.build_model(str(tiny_seq2seq), (), **overrides)
    assert model.config.dropout == 0.25 and model.config.attention_dropout == 0.25
    assert model.model.encoder.dropout == 0.25 and model.model.decoder.layers[0].dropout == 0.25  # what BART applies


def test_a_decoder_only_model_is_refused_for_seq2seq_before_anything_is_written(
    tmp_path, tiny_seq2seq, tiny_causal_lm, capsys
):
    path = s2s_study(tmp_path, tiny_causal_lm, write_summaries(tmp_path / "data"))
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "model.name_or_path: model" in err and "is a gpt2 model: AutoModelForSeq2SeqLM (seq2seq) cannot build it" in err
    )
    assert not (tmp_path / "s2s.db").exists()
