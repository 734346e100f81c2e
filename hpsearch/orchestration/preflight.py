"""Every check a study needs before anything is written: spec, options, model, tokenizer, data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hpsearch.data import sources as data
from hpsearch.errors import redact, shown
from hpsearch.orchestration import corners
from hpsearch.results.storage import storage_url
from hpsearch.search import pruners, samplers, space
from hpsearch.spec import Spec, SpecError
from hpsearch.tasks import TASKS, causal_lm, chat_template
from hpsearch.training import lora, models, scoring
from hpsearch.training.trainer import notes


@dataclass(frozen=True)
class LoadedModel:
    """One model a study trains: where it loads from, its tokenizer, its config's dropout names."""

    path: str
    tokenizer: Any
    dropout_attributes: tuple[str, ...]


@dataclass(frozen=True)
class Prepared:
    """What preflight loaded while it checked the study (storage, models, raw data, labels, budget):
    a run or worker starts from it instead of loading things twice."""

    storage_url: str
    model_path: str
    tokenizer: Any
    raw: data.RawData
    labels: tuple[str, ...]
    total_trials: int | None
    models: dict[str, LoadedModel] = dataclasses.field(default_factory=dict)
    """Every model by the name trials know it by: search.model's choices as written, or the one
    model.name_or_path. model_path and tokenizer are the first one's."""

    def model_for(self, spec: Spec, params: dict[str, Any]) -> LoadedModel:
        """The model a trial with these params trains."""
        if not self.models:  # built by hand with one model
            return LoadedModel(self.model_path, self.tokenizer, ())
        return self.models[params["model"] if "model" in params else spec.model.name_or_path]


def total_trials(spec: Spec) -> int | None:
    """budget.n_trials; a grid study runs at most its grid size (no point twice) and defaults to it."""
    if spec.sampler.type == "grid":
        size = space.grid_size(spec.search)
        return size if spec.budget.n_trials is None else min(spec.budget.n_trials, size)
    return spec.budget.n_trials


# The transformers table of model types each task's auto class can build.
TASK_ARCHITECTURES = {
    "sequence-classification": (
        "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
        "AutoModelForSequenceClassification",
    ),
    "causal-lm": ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "AutoModelForCausalLM"),
    "seq2seq": ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "AutoModelForSeq2SeqLM"),
}


def _check_architecture(spec: Spec, config, where: str, label: str) -> None:
    """A model type transformers knows must be one the task's auto class builds (a decoder for
    seq2seq fails every trial otherwise); a type it does not know is left to loading."""
    from transformers.models.auto import configuration_auto, modeling_auto

    table, auto_class = TASK_ARCHITECTURES[spec.task]
    known = config.model_type in configuration_auto.CONFIG_MAPPING_NAMES
    if known and config.model_type not in getattr(modeling_auto, table):
        raise SpecError(
            spec.source,
            where,
            f"model {label!r} is a {config.model_type} model: {auto_class} ({spec.task}) cannot build it",
        )


def _check_lora_targets(spec: Spec, config, label: str) -> None:
    """Every module name a LoRA trial may target must exist in the model (q_proj is Llama's, c_attn
    GPT-2's): checked on the model's skeleton (meta device, no weights), not trial by trial."""
    if spec.finetune.method != "lora" and "finetune" not in spec.search:
        return
    settings = [("lora.target_modules", spec.finetune.target_modules)]
    if "lora_target_modules" in spec.search:
        settings = [("search.lora_target_modules", v) for v in spec.search["lora_target_modules"].choices]
    if not any(lora.module_names(value) for _, value in settings):
        return
    import torch
    import transformers

    auto_class = getattr(transformers, TASK_ARCHITECTURES[spec.task][1])
    with torch.device("meta"):
        skeleton = auto_class.from_config(config)
    for where, value in settings:
        missing, unwrappable, layers = lora.missing_targets(skeleton, value)
        problems = [f"{', '.join(missing)}: no such module"] if missing else []
        if unwrappable:
            kinds = ", ".join(sorted({kind for found in unwrappable.values() for kind in found}))
            layer = "a layer" if len(unwrappable) == 1 else "layers"
            problems.append(f"{', '.join(unwrappable)}: not {layer} LoRA can wrap ({kinds})")
        if problems:
            raise SpecError(
                spec.source,
                where,
                f"{'; '.join(problems)} in model {label!r} ({config.model_type}); its layers LoRA can wrap "
                f"end in: {', '.join(layers[:16])}",
            )


def _load_model(spec: Spec, name_or_path: str, where: str, label: str) -> LoadedModel:
    """Resolve one model, load its tokenizer and config, and check max_length and dropout against it."""
    from transformers import AutoConfig, AutoTokenizer

    path = models.resolve_model(name_or_path, spec.source, where)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise SpecError(spec.source, where, f"cannot load tokenizer and config: {reason}") from None
    _check_architecture(spec, config, where, label)
    _check_lora_targets(spec, config, label)
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:  # no position embeddings: none (T5), or -1 (XLNet)
        limit = None
    if limit is not None and spec.data.max_length > limit:
        raise SpecError(spec.source, "data.max_length", f"{spec.data.max_length} exceeds the model's {limit} positions")
    if limit is not None and spec.task == "seq2seq" and spec.data.max_target_length > limit:
        raise SpecError(
            spec.source,
            "data.max_target_length",
            f"{spec.data.max_target_length} exceeds the model's {limit} positions",
        )
    # The decoder takes a position for each token it generates (a causal-lm's share data.max_length with the prompt).
    tokens = spec.generation.max_new_tokens
    if limit is not None and spec.task == "seq2seq" and spec.generation.enabled and tokens > limit:
        exceeds = f"{shown(tokens)} exceeds the model's {limit} positions"
        raise SpecError(spec.source, "generation.max_new_tokens", exceeds)
    attributes = models.dropout_attributes(config)
    dropout = "search.dropout" if "dropout" in spec.search else "model.dropout"
    if (dropout == "search.dropout" or spec.model.dropout is not None) and not attributes:
        raise SpecError(
            spec.source,
            dropout,
            f"model {label!r} ({type(config).__name__}) has none of the dropout settings hpsearch sets "
            f"(hidden_dropout_prob, attention_dropout, dropout, resid_pdrop, ...); remove {dropout}",
        )
    return LoadedModel(path, tokenizer, attributes)


def _load_models(spec: Spec) -> dict[str, LoadedModel]:
    """The fixed model, or every choice of search.model (an error names the choice)."""
    if not spec.model.choices:
        name = spec.model.name_or_path
        return {name: _load_model(spec, name, "model.name_or_path", name)}
    loaded = {}
    for choice, name in spec.model.choices.items():
        try:
            loaded[choice] = _load_model(spec, name, "search.model", choice)
        except SpecError as exc:
            raise naming_choice(exc, choice) from None
    return loaded


def naming_choice(exc: SpecError, choice: str) -> SpecError:
    """A model's error as search.model's, naming the choice (dropout errors name their own field)."""
    if exc.field in ("model.dropout", "search.dropout"):
        return exc
    said = exc.message if exc.field in ("search.model", "model.name_or_path") else f"{exc.field} {exc.message}"
    return SpecError(exc.source, "search.model", f"choice {choice!r}: {said}")


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


def _check_encoding(spec: Spec, task, raw: data.RawData, labels, loaded: dict[str, LoadedModel]) -> None:
    """Encode two train rows, and a chat of each order of roles in either split, with each model's tokenizer,
    as trials will: a chat without a chat template, or one the template refuses, is refused here rather than
    after the study is created."""
    import datasets

    rows = raw.train.select(range(min(2, len(raw.train)))).to_list()
    if "messages" in raw.train.column_names:  # causal-lm chats
        chats = [*raw.train["messages"], *raw.eval["messages"]]
        rows += [{"messages": m} for m in chat_template.one_per_role_order(chats)]
    rows = datasets.Dataset.from_list(rows)  # in memory
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a few rows: no "Map" bar in `validate`'s output
    try:
        for choice, model in loaded.items():
            _encode_with(spec, task, rows, labels, choice, model, raw.train)
    finally:
        if bars:
            datasets.enable_progress_bars()


def _encode_with(spec: Spec, task, rows, labels, choice: str, model: LoadedModel, train) -> None:
    """Encode ROWS with one model's tokenizer, and with packing, enough of TRAIN to fill a block; its error
    names the model (or the search.model choice)."""
    try:
        task.encode_train(spec, rows, model.tokenizer, labels)
        if spec.data.packing:  # a causal-lm key
            causal_lm.check_packing(spec, train, model.tokenizer)
    except SpecError as exc:
        raise (naming_choice(exc, choice) if spec.model.choices else exc) from None
    except ValueError as exc:
        where = "search.model" if spec.model.choices else "model.name_or_path"
        said = f"choice {choice!r}: " if spec.model.choices else ""
        raise SpecError(spec.source, where, f"{said}{str(exc).splitlines()[0][:200]}") from None


def check(spec: Spec, storage_override: str | None = None, *, write: bool = True) -> Prepared:
    """Raises SpecError on the first problem; writes nothing. With write (the default: a study about to be
    run), a SQLite storage must be a file SQLite can create or write; `hpsearch train` only reads."""
    samplers.build_sampler(spec)
    pruners.build_pruner(spec)
    url = storage_url(spec, storage_override, write=write)
    corners.check_training_arguments(spec)
    _load_metrics(spec)
    loaded = _load_models(spec)
    task = TASKS[spec.task]
    raw = data.load_raw(spec.data, spec.source, task.columns(spec))
    texts = raw.sample_texts(200)
    for choice, model in loaded.items():
        try:
            _check_vocabulary(spec, model.tokenizer, texts)
        except SpecError as exc:
            if not spec.model.choices:
                raise
            raise naming_choice(exc, choice) from None
    labels = task.label_names(raw, spec)
    _check_encoding(spec, task, raw, labels, loaded)
    first = next(iter(loaded.values()))
    return Prepared(url, first.path, first.tokenizer, raw, labels, total_trials(spec), loaded)


def describe(spec: Spec, prepared: Prepared) -> str:
    trials = "until the timeout" if prepared.total_trials is None else f"{prepared.total_trials} trials"
    return (
        f"{spec.source}: OK: study {spec.name!r}, {spec.task}, {len(spec.search)} searched params "
        f"({', '.join(spec.search)}), {spec.sampler.type} sampler, {spec.pruner.type} pruner, {trials}\n"
        f"  data: {len(prepared.raw.train)} train / {len(prepared.raw.eval)} eval rows, "
        + (f"{len(prepared.labels)} labels, " if prepared.labels else "")
        + f"fingerprint {prepared.raw.fingerprint}"
        + "".join(f"\n  model: {m.path}" for m in prepared.models.values())
        + f"\n  storage: {redact(prepared.storage_url)}"
        + _describe_generation(spec, len(prepared.raw.eval))
        + "".join(f"\n  {note}" for note in notes(spec))
    )


def _describe_generation(spec: Spec, eval_rows: int) -> str:
    settings = spec.generation
    if not settings.enabled:
        return ""
    return (
        f"\n  generation: {', '.join(settings.metrics)} of greedy outputs (at most {settings.max_new_tokens} "
        f"tokens) for the first {min(settings.samples, eval_rows)} eval rows, at every evaluation"
    )
