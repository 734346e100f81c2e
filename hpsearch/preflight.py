"""Every check a study needs before anything is written: spec, options, model, tokenizer, data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpsearch import data, models, pruners, samplers, scoring, space
from hpsearch.spec import Spec, SpecError
from hpsearch.storage import redact, storage_url
from hpsearch.tasks import TASKS
from hpsearch.trial import training_arguments


@dataclass(frozen=True)
class Checked:
    """What validation learned; a run reuses it instead of loading things twice."""

    storage_url: str
    model_path: str
    tokenizer: Any
    raw: data.RawData
    labels: tuple[str, ...]
    total_trials: int | None


def total_trials(spec: Spec) -> int | None:
    """budget.n_trials; a grid study runs at most its grid size (no point twice) and defaults to it."""
    if spec.sampler.type == "grid":
        size = space.grid_size(spec.search)
        return size if spec.budget.n_trials is None else min(spec.budget.n_trials, size)
    return spec.budget.n_trials


def _example_params(spec: Spec) -> list[tuple[str, dict]]:
    """The space's low corner, its high corner, and each categorical choice on the low corner."""
    low = {n: (p.choices[0] if p.kind == "categorical" else p.low) for n, p in spec.search.items()}
    high = {n: (p.choices[-1] if p.kind == "categorical" else p.high) for n, p in spec.search.items()}
    points = [("train", low), ("search", high)]
    for name, p in spec.search.items():
        for choice in p.choices[1:]:
            points.append((f"search.{name}", {**low, name: choice}))
    return points


def _check_training_arguments(spec: Spec) -> None:
    from transformers import TrainingArguments

    for field, params in _example_params(spec):
        try:
            TrainingArguments(output_dir="unused", **training_arguments(spec, params))
        except (ValueError, TypeError, ImportError) as exc:
            reason = str(exc).splitlines()[0][:300]
            raise SpecError(spec.source, field, f"TrainingArguments rejects it: {reason}") from None


def _load_tokenizer(spec: Spec, model_path: str):
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise SpecError(spec.source, "model.name_or_path", f"cannot load tokenizer and config: {reason}") from None
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and spec.data.max_length > limit:
        raise SpecError(spec.source, "data.max_length", f"{spec.data.max_length} exceeds the model's {limit} positions")
    if limit is not None and spec.task == "seq2seq" and spec.data.max_target_length > limit:
        raise SpecError(
            spec.source,
            "data.max_target_length",
            f"{spec.data.max_target_length} exceeds the model's {limit} positions",
        )
    return tokenizer


def _check_vocabulary(spec: Spec, tokenizer, texts: list[str]) -> None:
    """A model folder without vocabulary files still gives transformers 5 a tokenizer, one that maps
    every word to the unknown token; catch that (and any badly mismatched vocabulary) up front."""
    unknown = tokenizer.unk_token_id
    if unknown is None or not texts:
        return
    ids = [i for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for i in row]
    share = sum(i == unknown for i in ids) / max(len(ids), 1)
    if share > 0.5:
        raise SpecError(
            spec.source,
            "model.name_or_path",
            f"its tokenizer maps {share:.0%} of the training text to {tokenizer.unk_token} "
            f"(vocabulary of {len(tokenizer)} tokens): are its tokenizer files missing?",
        )


def _load_metrics(spec: Spec) -> None:
    """Import the installed metrics the generation section names, so a broken one fails now."""
    for name in spec.generation.metrics:
        try:
            scoring.load(name)
        except Exception as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise SpecError(spec.source, "generation.metrics", f"{name!r} cannot be loaded: {reason}") from None


def check(spec: Spec, storage_override: str | None = None) -> Checked:
    """Raises SpecError on the first problem; writes nothing."""
    samplers.build_sampler(spec)
    pruners.build_pruner(spec)
    url = storage_url(spec, storage_override)
    _check_training_arguments(spec)
    _load_metrics(spec)
    model_path = models.resolve_model(spec.model.name_or_path, spec.source)
    tokenizer = _load_tokenizer(spec, model_path)
    task = TASKS[spec.task]
    raw = data.load_raw(spec.data, spec.source, task.columns(spec))
    _check_vocabulary(spec, tokenizer, raw.sample_texts(200))
    labels = task.label_names(raw, spec)
    return Checked(url, model_path, tokenizer, raw, labels, total_trials(spec))


def describe(spec: Spec, checked: Checked) -> str:
    trials = "until the timeout" if checked.total_trials is None else f"{checked.total_trials} trials"
    return (
        f"{spec.source}: OK: study {spec.name!r}, {spec.task}, {len(spec.search)} searched params "
        f"({', '.join(spec.search)}), {spec.sampler.type} sampler, {spec.pruner.type} pruner, {trials}\n"
        f"  data: {len(checked.raw.train)} train / {len(checked.raw.eval)} eval rows, "
        + (f"{len(checked.labels)} labels, " if checked.labels else "")
        + f"fingerprint {checked.raw.fingerprint}\n"
        f"  model: {checked.model_path}\n  storage: {redact(checked.storage_url)}"
        + _describe_generation(spec, len(checked.raw.eval))
    )


def _describe_generation(spec: Spec, eval_rows: int) -> str:
    settings = spec.generation
    if not settings.enabled:
        return ""
    return (
        f"\n  generation: {', '.join(settings.metrics)} of greedy outputs (at most {settings.max_new_tokens} "
        f"tokens) for the first {min(settings.samples, eval_rows)} eval rows, at every evaluation"
    )
