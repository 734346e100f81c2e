"""The eval loss's standard error for the language-model tasks, from per-row token-loss sums and counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpsearch.tasks import token_loss


def test_with_one_token_a_row_it_is_the_standard_error_of_a_mean():
    losses = np.random.default_rng(0).exponential(2.0, size=50)
    se = token_loss.ratio_standard_error(losses, np.ones(50))
    assert se == pytest.approx(losses.std(ddof=1) / np.sqrt(50))


def test_it_agrees_with_a_bootstrap_of_the_token_mean():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 30, size=200).astype(float)
    sums = counts * rng.normal(2.0, 0.5, size=200) + rng.normal(0, 3, size=200)
    draws = rng.integers(0, 200, size=(4000, 200))
    bootstrap = (sums[draws].sum(axis=1) / counts[draws].sum(axis=1)).std()
    assert token_loss.ratio_standard_error(sums, counts) == pytest.approx(bootstrap, rel=0.1)
    assert np.isnan(token_loss.ratio_standard_error(sums[:1], counts[:1]))


def test_rows_without_a_counted_token_are_left_out():
    rows = np.array([[4.0, 2.0], [0.0, 0.0], [9.0, 3.0], [1.0, 1.0]])
    from transformers import EvalPrediction

    metrics = token_loss.compute_metrics(EvalPrediction(predictions=rows, label_ids=None))
    assert metrics["loss_se"] == pytest.approx(token_loss.ratio_standard_error(rows[[0, 2, 3], 0], rows[[0, 2, 3], 1]))
    assert metrics["loss"] == pytest.approx(14 / 6)  # the mean over the counted tokens, not over rows


def test_the_eval_loss_is_the_token_mean_of_the_split_whatever_the_eval_batch(tmp_path, tiny_causal_lm):
    """Trainer's own eval loss averages each eval batch's token mean over rows, so it moved with the eval
    batch size (an out-of-memory retry halves it); the recorded one is the split's token mean."""
    import optuna

    from hpsearch import cli
    from tests.test_causal_lm import lm_study, write_pairs

    curves = {}
    for batch in (3, 7, 16):
        folder = tmp_path / f"eval-{batch}"
        path = lm_study(folder, tiny_causal_lm, write_pairs(folder / "data", n_eval=15), search__learning_rate=[5e-3])
        text = path.read_text().replace("use_cpu: true", f"use_cpu: true\n  per_device_eval_batch_size: {batch}")
        path.write_text(text)
        assert cli.main(["run", str(path), "--quiet"]) == 0
        (trial,) = optuna.load_study(study_name="lm", storage=f"sqlite:///{folder}/lm.db").trials
        curves[batch] = [point["eval_loss"] for point in trial.user_attrs["curve"]]
    assert curves[3] == pytest.approx(curves[7], rel=1e-5) and curves[16] == pytest.approx(curves[7], rel=1e-5)


def _batch(tokenizer, texts, labels_from: int):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = token_loss.IGNORE
    labels[:, :labels_from] = token_loss.IGNORE  # a prompt the loss does not count
    return batch, labels


def test_the_rows_of_a_causal_batch_add_up_to_the_models_own_loss(tiny_causal_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm).eval()
    batch, labels = _batch(tokenizer, ["where is my parcel now", "refund please", "reset my password today ok"], 2)
    with torch.no_grad():
        out = model(**batch, labels=labels)
    rows = token_loss.causal_rows(out.logits, labels)
    assert rows.shape == (3, 2)
    assert rows[:, 1].tolist() == (labels[:, 1:] != token_loss.IGNORE).sum(dim=1).float().tolist()
    assert (rows[:, 0].sum() / rows[:, 1].sum()).item() == pytest.approx(out.loss.item(), rel=1e-5)


def test_the_rows_of_a_seq2seq_batch_add_up_to_the_models_own_loss(tiny_seq2seq):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_seq2seq)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq).eval()
    sources = tokenizer(["a long text to summarise", "another one"], return_tensors="pt", padding=True)
    _, labels = _batch(tokenizer, ["short", "a bit longer summary"], 0)
    with torch.no_grad():
        out = model(**sources, labels=labels)
    rows = token_loss.seq2seq_rows((out.logits, out.encoder_last_hidden_state), labels)
    assert (rows[:, 0].sum() / rows[:, 1].sum()).item() == pytest.approx(out.loss.item(), rel=1e-5)
