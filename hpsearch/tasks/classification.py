"""Sequence classification: label mapping from the data, accuracy, macro-F1 and eval loss."""

from __future__ import annotations

import math
from collections.abc import Callable

import datasets
import numpy as np

from hpsearch.data import sources
from hpsearch.spec import Spec, SpecError
from hpsearch.tasks.task_data import TaskData

PEFT_TASK_TYPE = "SEQ_CLS"  # what peft adapts the model for (finetune: lora)


def columns(spec: Spec) -> dict[str, str]:
    """The data's columns this task reads, under the names it reads them by."""
    return {"text": spec.data.text_column, "label": spec.data.label_column}


def label_names(raw: sources.RawData, spec: Spec) -> tuple[str, ...]:
    """Sorted train labels (numerically when they are all numbers); at least 2; eval labels must be among them."""
    train_labels = set(raw.train["label"])
    missing = sorted(set(raw.eval["label"]) - train_labels)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        field = "data.eval_split" if spec.data.eval_split is not None else "data.eval_fraction"
        hint = " (after data.max_train_samples subsampling)" if spec.data.max_train_samples else ""
        raise SpecError(
            spec.source,
            field,
            f"{len(missing)} eval label(s) never occur in the train split{hint}: {shown}",
        )
    if len(train_labels) < 2:
        raise SpecError(
            spec.source,
            "data.label_column",
            f"{len(train_labels)} label in split {spec.data.train_split!r} ({', '.join(map(repr, train_labels))}); "
            "classification needs at least 2",
        )
    numbers = [_number(label) for label in train_labels]
    if None not in numbers:
        return tuple(label for _, label in sorted(zip(numbers, train_labels, strict=True)))
    return tuple(sorted(train_labels))


def _number(label: str) -> float | None:
    """A label's value when it is a finite number ("2", "-1", "0.5"), for sorting; else None."""
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def encode_split(spec: Spec, split: datasets.Dataset, tokenizer, labels: tuple[str, ...] = ()) -> datasets.Dataset:
    """One raw split tokenized: the text truncated to max_length, the label as its index in `labels`."""
    index = {name: i for i, name in enumerate(labels)}
    max_length = spec.data.max_length

    def encode(batch):
        out = tokenizer(batch["text"], truncation=True, max_length=max_length)
        out["labels"] = [index[label] for label in batch["label"]]
        return out

    return split.map(encode, batched=True, remove_columns=["text", "label"])


encode_train = encode_split  # the train split is encoded like the eval split (augmentation re-encodes it)


def augment_inputs(row: dict, change: Callable[[str], str]) -> dict:
    """Augmentation changes the text, never the label."""
    return {**row, "text": change(row["text"])}


def prepare(spec: Spec, raw: sources.RawData, tokenizer) -> TaskData:
    """Tokenize both splits once (dynamic padding happens per batch in the collator)."""
    labels = label_names(raw, spec)

    def build() -> datasets.DatasetDict:
        return datasets.DatasetDict(
            {split: encode_split(spec, getattr(raw, split), tokenizer, labels) for split in ("train", "eval")}
        )

    key = {
        "task": spec.task,
        "tokenizer": sources.tokenizer_fingerprint(tokenizer),
        "max_length": spec.data.max_length,
        "data": raw.fingerprint,
        "labels": list(labels),
    }
    tokenized = sources.cached(key, build)
    return TaskData(
        train=tokenized["train"],
        eval=tokenized["eval"],
        labels=labels,
        fingerprint=raw.fingerprint,
        eval_by_length=True,  # a row's logits do not depend on its batch mates (the attention mask)
    )


def build_model(model_path: str, labels: tuple[str, ...] = (), **config_overrides):
    """The pretrained model with a new head for `labels`; `config_overrides` (dropout) go to its config."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        **config_overrides,
    )


def collator(tokenizer, model=None):
    """Pads each batch to its longest row."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def compute_metrics(prediction) -> dict[str, float]:
    """Accuracy and macro-F1, and the standard errors of accuracy and of the loss (from the per-example
    results: what a noise-aware pruner weighs a gap against)."""
    from sklearn.metrics import f1_score

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    logits = np.asarray(logits, dtype=np.float64)
    predicted = logits.argmax(axis=-1)
    truth = np.asarray(prediction.label_ids)
    correct = (predicted == truth).astype(float)
    # Per-example cross-entropy, as the model's loss computes it (log-softmax at the true label).
    shifted = logits - logits.max(axis=-1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(axis=-1)) - shifted[np.arange(len(truth)), truth]
    # Macro-F1 averages over the labels in the truth or the predictions; 0 for a label never predicted.
    f1_macro = float(f1_score(truth, predicted, average="macro", zero_division=0.0))
    return {
        "accuracy": float(correct.mean()),
        "f1_macro": f1_macro,
        "accuracy_se": _standard_error(correct),  # sqrt(p (1 - p) / n) for 0/1 outcomes
        "loss_se": _standard_error(losses),
    }


def _standard_error(values: np.ndarray) -> float:
    """The standard error of a mean of per-example values: their std over sqrt(n)."""
    return float(values.std() / np.sqrt(len(values))) if len(values) > 1 else float("nan")


preprocess_logits_for_metrics = None  # compute_metrics reads the logits (one row of labels each)
derived_metrics = None  # every metric comes from compute_metrics
