"""A conversation through a tokenizer's chat template: its tokens, with the tokens of every assistant turn
labelled (causal-lm trains on chats, and on pairs as a user turn and an assistant turn, this way)."""

from __future__ import annotations

from collections.abc import Iterable

import jinja2

from hpsearch.errors import shown
from hpsearch.tasks.token_loss import IGNORE

ROLE_ORDERS = 200  # preflight encodes one chat of each order of roles, up to this many orders


class Refused(ValueError):
    """The chat template refuses a conversation (a role order or a role it does not take): the data's fault,
    where a tokenizer without a chat template, or a template that does not compile, is the model's."""


def render(tokenizer, messages: list[dict], **options) -> str:
    """The conversation as the chat template writes it; what the template raises against it is Refused."""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, **options)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"its chat template does not compile: {exc.message}") from None
    except (jinja2.TemplateError, ValueError) as exc:  # raise_exception('...') in a template is a TemplateError
        raise Refused(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def refusal(messages: list[dict], exc: Refused) -> str:
    """What a refused chat's error says: its start, to find it by; its roles in order, what templates refuse a
    chat by; and the template's words."""
    roles = shown(", ".join(m["role"] for m in messages), 80)
    return f"the chat template refuses the chat starting {shown(messages[0]['content'], 40)} (roles {roles}): {exc}"


def one_per_role_order(chats: Iterable[list[dict]]) -> list[list[dict]]:
    """The first chat of each order of roles (of the first ROLE_ORDERS orders): encoding them finds what a
    template refuses by roles (two user turns in a row, a system turn) without encoding every chat."""
    first: dict[tuple[str, ...], list[dict]] = {}
    for messages in chats:
        if len(first) == ROLE_ORDERS:
            break
        first.setdefault(tuple(m["role"] for m in messages), messages)
    return list(first.values())


def encode_messages(tokenizer, messages: list[dict], max_length: int) -> dict[str, list[int]]:
    """A conversation through the chat template; the tokens of every assistant turn are labelled.

    The assistant spans are found as text: the template rendered up to a turn (with the generation
    prompt) is a prefix of the template rendered through that turn, and the characters in between
    are the turn. Tokens are mapped to characters with the fast tokenizer's offsets. Too long a
    conversation loses its start first (up to the first assistant turn), then its end.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template")
    full = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        if i == 0:
            raise Refused("its first turn is the assistant's: no prompt comes before the answer")
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1])
        if not (full.startswith(through) and through.startswith(before)):
            raise ValueError("the chat template does not render a conversation as a prefix of a longer one")
        spans.append((len(before), len(through)))
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    input_ids = encoded["input_ids"]
    labels = [
        token if any(start <= a and b <= end and b > a for start, end in spans) else IGNORE
        for token, (a, b) in zip(input_ids, encoded["offset_mapping"], strict=True)
    ]
    # Too long: the start goes first, up to the first answer (what is learnt), then the end.
    first = next((i for i, label in enumerate(labels) if label != IGNORE), len(labels))
    cut = min(max(len(input_ids) - max_length, 0), first)
    input_ids, labels = input_ids[cut:][:max_length], labels[cut:][:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}
