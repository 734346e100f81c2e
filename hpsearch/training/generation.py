"""Generate for a fixed eval sample at every evaluation and score the outputs (ROUGE, exact match,
user metrics), adding them to the evaluation's metrics before the Optuna reporter reads them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from transformers import TrainerCallback

from hpsearch.tasks.task_data import Sample
from hpsearch.training import scoring

SHOWN = 3  # generated examples recorded on a trial
SHOWN_CHARS = 300  # each text of a recorded example is cut to this many characters


def decoding(model, max_new_tokens: int, stop_ids: Sequence[int], pad: int):
    """The model's generation config with hpsearch's decoding rules over it: greedy, no repetition
    penalties or n-gram bans (a checkpoint's own, e.g. Qwen-Instruct's repetition_penalty 1.1 or BART's
    no_repeat_ngram_size 3, would score each model of a search.model by other rules), and an output
    ends at any of the model's EOS tokens or `stop_ids`. Its structural settings (decoder start,
    forced BOS/EOS) stay."""
    import copy

    config = copy.deepcopy(model.generation_config)
    eos = config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    config.update(
        max_new_tokens=max_new_tokens,
        min_new_tokens=None,
        min_length=0,
        do_sample=False,
        num_beams=1,
        temperature=None,
        top_p=None,
        top_k=None,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0,
        length_penalty=1.0,
        eos_token_id=sorted({*eos, *stop_ids}),
        pad_token_id=pad,
    )
    return config


def generate(
    model,
    tokenizer,
    encoded: Sequence[Sequence[int]],
    max_new_tokens: int,
    batch_size: int,
    autocast: torch.dtype | None = None,
    stop_ids: Sequence[int] = (),
) -> list[str]:
    """Greedy outputs for token-id prompts, decoded without special tokens.

    Batches are padded on the left for a decoder-only model (its output continues the prompt's last
    token) and on the right for an encoder-decoder one; the tokenizer's own padding side is left as
    it is, since the training collator pads labels on that side. Runs in eval mode without gradients
    and puts the model back in the mode it was in. `autocast` (bf16 or fp16: the trial's mixed
    precision) runs it in that precision, as training does, instead of in the fp32 weights'.
    Decoding follows `decoding`: greedy, ending at the model's EOS or any of `stop_ids`.
    """
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    side = "left" if decoder_only else "right"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    config = decoding(model, max_new_tokens, stop_ids, pad)
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    try:
        precision = nullcontext() if autocast is None else torch.autocast(device.type, dtype=autocast)
        with torch.no_grad(), precision:
            for start in range(0, len(encoded), batch_size):
                chunk = [{"input_ids": list(ids)} for ids in encoded[start : start + batch_size]]
                batch = tokenizer.pad(chunk, padding_side=side, return_tensors="pt").to(device)
                generated = model.generate(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    generation_config=config,
                )
                if decoder_only:  # the prompt comes back first: keep what was generated
                    generated = generated[:, batch["input_ids"].shape[1] :]
                outputs.extend(t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True))
    finally:
        model.train(was_training)
    return outputs


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


class GeneratedMetrics(TrainerCallback):
    """At every evaluation: generate for the sample, score, add `eval_<metric>` to the metrics.

    Placed before `OptunaReporter`, so the reporter (pruning, the curve) and early stopping see the
    scores like any other metric. `examples` holds a few inputs, references and outputs of the last
    evaluation, recorded on the trial.
    """

    def __init__(self, sample: Sample, tokenizer) -> None:
        self.sample = sample
        self.tokenizer = tokenizer
        self.metrics = {name: scoring.load(name) for name in sample.metrics}
        self.examples: list[dict[str, str]] = []

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if metrics is None or model is None:
            return control
        precision = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
        outputs = generate(
            model,
            self.tokenizer,
            self.sample.encoded,
            self.sample.max_new_tokens,
            args.per_device_eval_batch_size,
            autocast=precision,
            stop_ids=self.sample.stop_ids,
        )
        scores = scoring.score(self.metrics, outputs, list(self.sample.references))
        metrics.update({f"eval_{name}": value for name, value in scores.items()})
        self.examples = [
            {"input": _cut(i), "reference": _cut(r), "output": _cut(o)}
            for i, r, o in zip(self.sample.inputs, self.sample.references, outputs, strict=False)
        ][:SHOWN]
        return control
