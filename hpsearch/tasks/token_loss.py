"""The standard error of a language model's eval loss, from its per-row token losses: what a noise-aware
pruner weighs a causal-lm or seq2seq trial's loss gap against.

Trainer would keep every eval batch's logits (vocabulary x tokens) for compute_metrics, too much for a
language model. Its `preprocess_logits_for_metrics` hook (`causal_rows`, `seq2seq_rows`) keeps two numbers
a row instead, computed on the device from the batch's logits: the sum of the row's token losses and its
token count. The eval loss is a ratio of sums (tokens, not rows, are averaged), so its standard error is
the ratio estimator's: sqrt(sum((L_i - R n_i)^2) / (N (N - 1))) / mean(n_i), R = sum(L_i) / sum(n_i)."""

from __future__ import annotations

import numpy as np

IGNORE = -100  # label of a token the loss does not count


def _rows(logits, labels, shift: bool):
    """[batch, 2]: each row's summed cross-entropy over its counted tokens, and their number."""
    import torch

    logits = logits[0] if isinstance(logits, tuple) else logits
    if shift:  # a decoder-only model predicts token t + 1 at position t
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    # Row by row: one row's logits in fp32 at a time (tokens x vocabulary; a batch's would double the
    # evaluation's peak memory for a large vocabulary).
    sums = torch.stack(
        [
            torch.nn.functional.cross_entropy(row.float(), target, ignore_index=IGNORE, reduction="sum")
            for row, target in zip(logits, labels, strict=True)
        ]
    )
    return torch.stack([sums, (labels != IGNORE).sum(dim=1).to(sums.dtype)], dim=1)


def causal_rows(logits, labels):
    """preprocess_logits_for_metrics of a causal LM (labels are the inputs, shifted by the model)."""
    return _rows(logits, labels, shift=True)


def seq2seq_rows(logits, labels):
    """preprocess_logits_for_metrics of a seq2seq model (the decoder's logits align with its labels)."""
    return _rows(logits, labels, shift=False)


def compute_metrics(prediction) -> dict[str, float]:
    """The eval loss, the mean over the split's counted tokens, and its standard error `loss_se` (Trainer
    names them eval_loss and eval_loss_se), from the rows `causal_rows` / `seq2seq_rows` kept.

    Trainer's own eval loss is a mean over rows of each eval batch's token mean: it moves with the eval
    batch size and with how long the rows batched together are, and it is not the ratio the standard
    error is of. A `loss` returned here replaces it (Trainer prefixes the metrics after setting its own)."""
    rows = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    rows = rows[rows[:, 1] > 0]  # a row with no counted token (its completion cut off) adds nothing
    if not len(rows):
        return {"loss_se": float("nan")}
    loss = float(rows[:, 0].sum() / rows[:, 1].sum())
    return {"loss": loss, "loss_se": ratio_standard_error(rows[:, 0], rows[:, 1])}


def ratio_standard_error(sums: np.ndarray, counts: np.ndarray) -> float:
    """The standard error of sum(sums) / sum(counts) over rows drawn at random (NaN under two rows)."""
    n = len(sums)
    if n < 2:
        return float("nan")
    ratio = sums.sum() / counts.sum()
    residuals = sums - ratio * counts
    return float(np.sqrt((residuals**2).sum() / (n * (n - 1))) / counts.mean())
