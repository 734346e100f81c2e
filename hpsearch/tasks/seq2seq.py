"""Encoder-decoder fine-tuning (summarisation and the like): a source column in, a target column out.

Labels are the target's token ids (padding -> -100); the model shifts them right into its decoder
inputs. Metrics: eval loss, and ROUGE (or the generation section's metrics) of the outputs generated
for the eval split's first rows at every evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import datasets

from hpsearch.data import sources
from hpsearch.spec import Spec
from hpsearch.tasks import token_loss
from hpsearch.tasks.task_data import Sample, TaskData, build_sample
from hpsearch.tasks.token_loss import IGNORE

PEFT_TASK_TYPE = "SEQ_2_SEQ_LM"  # what peft adapts the model for (finetune: lora)


def columns(spec: Spec) -> dict[str, str]:
    return {"source": spec.data.source_column, "target": spec.data.target_column}


def label_names(raw: sources.RawData, spec: Spec) -> tuple[str, ...]:
    return ()


def encode(tokenizer, batch: dict[str, list[str]], max_length: int, max_target_length: int) -> dict:
    """Sources as the encoder's input, targets as the labels, each truncated to its own length
    and with the tokenizer's special tokens (BART: <s> ... </s>; T5: ... </s>)."""
    out = tokenizer(batch["source"], truncation=True, max_length=max_length)
    out["labels"] = tokenizer(text_target=batch["target"], truncation=True, max_length=max_target_length)["input_ids"]
    return out


def generation_sample(spec: Spec, eval_rows: datasets.Dataset, tokenizer) -> Sample | None:
    """The first `generation.samples` eval rows: the source (truncated as in training) and its target."""
    if not spec.generation.enabled:
        return None
    rows = eval_rows[: spec.generation.samples]  # a dict of lists
    ids = tokenizer(rows["source"], truncation=True, max_length=spec.data.max_length)["input_ids"]
    return build_sample(list(zip(rows["source"], ids, rows["target"], strict=True)), spec.generation)


def encode_split(spec: Spec, split: datasets.Dataset, tokenizer, labels: tuple[str, ...] = ()) -> datasets.Dataset:
    """One raw split tokenized: sources and targets, each truncated to its own length."""
    max_length, max_target_length = spec.data.max_length, spec.data.max_target_length
    return split.map(
        lambda batch: encode(tokenizer, batch, max_length, max_target_length),
        batched=True,
        remove_columns=["source", "target"],
    )


encode_train = encode_split  # the train split is encoded like the eval split (augmentation re-encodes it)


def augment_inputs(row: dict, change: Callable[[str], str]) -> dict:
    """Augmentation changes the source, never the target the model must write."""
    return {**row, "source": change(row["source"])}


def prepare(spec: Spec, raw: sources.RawData, tokenizer) -> TaskData:
    """Tokenize both splits once (cached); padding happens per batch in the collator."""
    max_length, max_target_length = spec.data.max_length, spec.data.max_target_length

    def build() -> datasets.DatasetDict:
        return datasets.DatasetDict(
            {split: encode_split(spec, getattr(raw, split), tokenizer) for split in ("train", "eval")}
        )

    key = {
        "task": spec.task,
        "tokenizer": sources.tokenizer_fingerprint(tokenizer),
        "max_length": max_length,
        "max_target_length": max_target_length,
        "data": raw.fingerprint,
    }
    tokenized = sources.cached(key, build)
    return TaskData(
        train=tokenized["train"],
        eval=tokenized["eval"],
        labels=(),
        fingerprint=raw.fingerprint,
        generation=generation_sample(spec, raw.eval, tokenizer),
    )


def build_model(model_path: str, labels: tuple[str, ...] = (), **config_overrides):
    """The pretrained encoder-decoder; `config_overrides` (dropout) go to its config."""
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(model_path, **config_overrides)


def collator(tokenizer, model=None):
    """Pads sources with the pad token and labels with -100, per batch, and with the model adds the
    decoder inputs (the labels shifted right after the decoder start token, -100 read as padding).

    The model would shift the labels itself when given them, but Trainer's label smoothing
    (`label_smoothing_factor`) takes the labels out of the batch first: without decoder inputs,
    BART would then decode from its shifted *source*."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE, padding=True)


# Each eval batch's logits are reduced on the device to each row's token-loss sum and count: the eval
# loss's standard error comes from them. ROUGE is scored on generated outputs, by training.generation.
preprocess_logits_for_metrics = token_loss.seq2seq_rows
compute_metrics = token_loss.compute_metrics
derived_metrics = None  # ROUGE and the like come from generation; nothing derives from the others
