"""Causal LM supervised fine-tuning: prompt/completion pairs or chat messages.

The loss counts completion tokens only (the prompt's labels are -100). Chat messages go through
the tokenizer's chat template, and every assistant turn is a completion; so do prompt/completion
pairs (a user turn, an assistant turn) when the tokenizer has a template, else prompt text then
completion. Sequences are padded per batch;
`data.packing` concatenates examples into full blocks of `max_length` instead. Metrics: eval loss and
perplexity (exp of the eval loss); with a `generation` section, metrics of completions generated for
the eval split's first rows (hpsearch.training.generation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import datasets

from hpsearch.data import sources
from hpsearch.spec import Spec, SpecError
from hpsearch.tasks import chat_template, token_loss
from hpsearch.tasks.task_data import Sample, TaskData, build_sample
from hpsearch.tasks.token_loss import IGNORE

PEFT_TASK_TYPE = "CAUSAL_LM"  # what peft adapts the model for (finetune: lora)


def columns(spec: Spec) -> dict[str, str]:
    """Chat messages when `data.messages_column` is set, else prompt and completion columns."""
    if spec.data.messages_column is not None:
        return {"messages": spec.data.messages_column}
    return {"prompt": spec.data.prompt_column, "completion": spec.data.completion_column}


def label_names(raw: sources.RawData, spec: Spec) -> tuple[str, ...]:
    return ()


def end_token(tokenizer) -> int:
    """The token that ends a completion: EOS, else SEP (BERT-style vocabularies)."""
    for token_id in (tokenizer.eos_token_id, tokenizer.sep_token_id):
        if token_id is not None:
            return token_id
    raise ValueError("the tokenizer has neither an EOS nor a SEP token to end a completion with")


def ensure_padding(tokenizer) -> None:
    """Decoder tokenizers often have no pad token: pad with the end token (padding is masked anyway)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = end_token(tokenizer)


def encode_pair(tokenizer, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """Prompt then completion then the end token; labels only on the completion and the end token.
    Too long: the prompt loses its start first (the completion is what is learnt), then the completion its end."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = [*tokenizer(completion, add_special_tokens=False)["input_ids"], end_token(tokenizer)]
    room = max(max_length - len(bos) - len(completion_ids), 0)
    prompt_ids = prompt_ids[len(prompt_ids) - room :] if room else []
    input_ids = (bos + prompt_ids + completion_ids)[:max_length]
    labels = ([IGNORE] * (len(bos) + len(prompt_ids)) + completion_ids)[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def encode_row(tokenizer, row: dict, max_length: int, chat: bool) -> dict[str, list[int]]:
    """A chat row through the chat template; a prompt/completion pair through it too when the tokenizer
    has one (as a user turn and an assistant turn, the format the model was tuned on), else as the
    prompt's text followed by the completion's."""
    if chat:
        return chat_template.encode_messages(tokenizer, row["messages"], max_length)
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
        return chat_template.encode_messages(tokenizer, turns, max_length)
    return encode_pair(tokenizer, row["prompt"], row["completion"], max_length)


def generation_row(tokenizer, row: dict, room: int, chat: bool) -> tuple[str, list[int], str] | None:
    """(input shown, prompt token ids, reference) for generating a row's completion, the prompt
    built as `encode_row` builds it for training: a chat's turns before its last assistant turn (the
    reference) through the chat template with the generation prompt; a pair's prompt as a user turn
    when the tokenizer has a template, else its text after BOS. The prompt keeps its last `room`
    tokens. None for a chat without an assistant turn (nothing to compare with)."""
    if chat:
        messages = row["messages"]
        answers = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
        if not answers:
            return None
        turns, reference = messages[: answers[-1]], messages[answers[-1]]["content"]
        shown = turns[-1]["content"] if turns else ""
    else:
        turns, reference, shown = [{"role": "user", "content": row["prompt"]}], row["completion"], row["prompt"]
    if chat or getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return shown, ids[-room:], reference
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    return shown, bos + ids[-max(room - len(bos), 1) :], reference


def stop_tokens(tokenizer) -> tuple[int, ...]:
    """The tokens that end a generated answer: the end token and, with a chat template, the token the
    template puts after an assistant turn (Qwen's <|im_end|>, Llama 3's <|eot_id|>), which training
    labels and which a base model's generation config may not list as EOS."""
    stops = {end_token(tokenizer)}
    if getattr(tokenizer, "chat_template", None):
        probe = "hpsearch probe answer"
        turns = [{"role": "user", "content": "question"}, {"role": "assistant", "content": probe}]
        try:
            text = tokenizer.apply_chat_template(turns, tokenize=False)
        except Exception:  # a template that wants other roles: no end-of-turn token to add
            text = ""
        after = text[text.rfind(probe) + len(probe) :] if probe in text else ""
        ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after.strip() else []
        if ids:
            stops.add(ids[0])
    return tuple(sorted(stops))


def generation_sample(spec: Spec, eval_rows: datasets.Dataset, tokenizer) -> Sample | None:
    """The first `generation.samples` eval rows to generate for; prompt and output share max_length."""
    settings = spec.generation
    if not settings.enabled:
        return None
    chat = "messages" in eval_rows.column_names
    room = max(spec.data.max_length - settings.max_new_tokens, 1)
    rows = []
    for row in eval_rows:
        if len(rows) == settings.samples:
            break
        built = generation_row(tokenizer, row, room, chat)
        if built is not None:
            rows.append(built)
    return build_sample(rows, settings, stop_tokens(tokenizer))


def pack(rows: dict[str, list[list[int]]], block: int) -> dict[str, list[list[int]]]:
    """Concatenate the examples (each ends with its end token) and cut full blocks of `block` tokens;
    the remainder shorter than a block is dropped. Labels stay aligned with their tokens."""
    ids = [t for row in rows["input_ids"] for t in row]
    labels = [t for row in rows["labels"] for t in row]
    n = len(ids) // block * block
    out_ids = [ids[i : i + block] for i in range(0, n, block)]
    return {
        "input_ids": out_ids,
        "attention_mask": [[1] * block for _ in out_ids],
        "labels": [labels[i : i + block] for i in range(0, n, block)],
    }


def check_packing(spec: Spec, split: datasets.Dataset, tokenizer) -> None:
    """`data.packing` needs the train split to fill at least one block of `max_length` tokens (`pack`
    drops the remainder): rows are encoded until they do, so a large split costs a few rows."""
    block, chat, total = spec.data.max_length, "messages" in split.column_names, 0
    for row in split:
        total += len(encode_row(tokenizer, row, block, chat)["input_ids"])
        if total >= block:
            return
    raise SpecError(
        spec.source,
        "data.packing",
        f"{len(split)} train rows make 0 blocks of {block} tokens (they hold {total}); set data.max_length to "
        f"{total} or less, add rows, or turn packing off",
    )


def encode_split(spec: Spec, split: datasets.Dataset, tokenizer) -> datasets.Dataset:
    """One raw split tokenized row by row (`encode_row`), unpacked. A chat the chat template refuses is the
    data's error; a pair it refuses (hpsearch's user and assistant turns), or a tokenizer without one, the model's."""
    max_length = spec.data.max_length
    chat = "messages" in split.column_names

    def encode(row):
        try:
            return encode_row(tokenizer, row, max_length, chat)
        except chat_template.Refused as exc:
            if not chat:
                raise ValueError(
                    f"its chat template refuses a pair as a user turn and an assistant turn: {exc}"
                ) from None
            raise SpecError(spec.source, "data.messages_column", chat_template.refusal(row["messages"], exc)) from None

    try:
        return split.map(encode, remove_columns=split.column_names)
    except ValueError as exc:
        raise SpecError(spec.source, "model.name_or_path", str(exc)) from None


def encode_train(spec: Spec, split: datasets.Dataset, tokenizer, labels: tuple[str, ...] = ()) -> datasets.Dataset:
    """The train split tokenized, then packed into blocks when `data.packing` is on (after encoding, so
    augmentation, which changes the text, comes before packing)."""
    tokenized = encode_split(spec, split, tokenizer)
    if spec.data.packing:
        max_length = spec.data.max_length
        tokenized = tokenized.map(lambda rows: pack(rows, max_length), batched=True, batch_size=None)
    return tokenized


def augment_inputs(row: dict, change: Callable[[str], str]) -> dict:
    """Augmentation changes the prompt, or a chat's user turns; never a completion or assistant turn."""
    if "messages" in row:
        turns = [{**m, "content": change(m["content"])} if m["role"] == "user" else m for m in row["messages"]]
        return {**row, "messages": turns}
    return {**row, "prompt": change(row["prompt"])}


def prepare(spec: Spec, raw: sources.RawData, tokenizer) -> TaskData:
    """Tokenize both splits once (cached); pack the train split when `data.packing` is on."""
    ensure_padding(tokenizer)

    def build() -> datasets.DatasetDict:
        return datasets.DatasetDict(
            {"train": encode_train(spec, raw.train, tokenizer), "eval": encode_split(spec, raw.eval, tokenizer)}
        )

    key = {
        "task": spec.task,
        "tokenizer": sources.tokenizer_fingerprint(tokenizer),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "special_tokens": [tokenizer.bos_token_id, end_token(tokenizer)],  # encode_pair adds them
        "max_length": spec.data.max_length,
        "packing": spec.data.packing,
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
    """The pretrained decoder; `config_overrides` (dropout) go to its config."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, **config_overrides)


def collator(tokenizer, model=None):
    """Pads input_ids with the pad token, attention_mask with 0 and labels with -100, per batch."""
    from transformers import DataCollatorForSeq2Seq

    ensure_padding(tokenizer)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, padding=True)


# Each eval batch's logits are reduced on the device to each row's token-loss sum and count: the eval
# loss's standard error comes from them; perplexity from the eval loss (`derived_metrics`).
preprocess_logits_for_metrics = token_loss.causal_rows
compute_metrics = token_loss.compute_metrics


def derived_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """eval_perplexity = exp(eval_loss), added to an evaluation's metrics, and its standard error from
    the loss's (exp(loss) x loss_se, to first order)."""
    loss = metrics.get("eval_loss")
    if loss is None:
        return {}
    perplexity = math.exp(loss) if loss < 700 else float("inf")
    derived = {"eval_perplexity": perplexity}
    if metrics.get("eval_loss_se") is not None:
        derived["eval_perplexity_se"] = perplexity * metrics["eval_loss_se"]
    return derived
