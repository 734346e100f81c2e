"""`data.length_split`: each training batch, its rows sorted by length, trained as K micro-batches, each
padded only to its own longest row, in one backward pass. The same rows, order and gradient as the whole
batch (to float rounding; dropout's masks are drawn differently), less padding: bench/length_split.py
measured 0.82x / 0.61x / 0.50x the training time at batch 16 / 32 / 64 on a CPU.

The micro-batches' losses are summed as the whole batch's would be: where the model divides by Trainer's
label count (`num_items_in_batch`, the accumulated batch's), as they are; where it averages over its own
rows or tokens, weighted by their share of the batch's (training.accumulation asks the model which)."""

from __future__ import annotations

import functools

import torch

from hpsearch.tasks.token_loss import IGNORE  # a label the loss does not count

DECODER_KEYS = ("labels", "decoder_input_ids", "decoder_attention_mask")  # a seq2seq batch's target side


def micro_batches(inputs: dict, parts: int, encoder_decoder: bool) -> list[dict]:
    """The batch as up to `parts` micro-batches of its rows sorted by length (a stable sort), each cut
    to its longest row. A batch without a right-padded 2-D attention mask, or whose rows are all as long,
    stays whole. The target side of an encoder-decoder batch is split by rows and kept at its width (a
    causal decoder's later positions do not reach the earlier ones)."""
    mask = inputs.get("attention_mask")
    if not torch.is_tensor(mask) or mask.dim() != 2 or not bool(mask[:, 0].all()):
        return [inputs]
    lengths = mask.sum(dim=1)
    rows, width = mask.shape
    if parts <= 1 or rows < 2 or bool((lengths == lengths[0]).all()):
        return [inputs]
    order = torch.argsort(lengths, stable=True)
    out = []
    for index in torch.tensor_split(order, min(parts, rows)):
        longest = int(lengths[index].max())
        part = {}
        for key, value in inputs.items():
            if torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == rows:
                value = value[index.to(value.device)]
                source_side = not (encoder_decoder and key in DECODER_KEYS)
                if source_side and value.dim() >= 2 and value.shape[1] == width:
                    value = value[:, :longest]
            part[key] = value
        out.append(part)
    return out


def counted(labels: torch.Tensor, shifted: bool) -> torch.Tensor | int:
    """The items a micro-batch's mean loss averages: its rows, or its counted label tokens."""
    if labels.dim() == 1:
        return labels.shape[0]
    return (labels[..., 1:] if shifted else labels).ne(IGNORE).sum()


@functools.cache
def trainer_class():
    """Trainer with a `compute_loss` that trains each batch as `length_split` micro-batches."""
    from transformers import Trainer

    class LengthSplitTrainer(Trainer):
        length_split = 1

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            whole = super().compute_loss
            if return_outputs or not model.training or "labels" not in inputs:
                return whole(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            encoder_decoder = bool(getattr(self.accelerator.unwrap_model(model).config, "is_encoder_decoder", False))
            parts = micro_batches(inputs, self.length_split, encoder_decoder)
            if len(parts) == 1:
                return whole(model, inputs, num_items_in_batch=num_items_in_batch)
            divided = self.model_accepts_loss_kwargs and num_items_in_batch is not None
            shifted = getattr(self, "_loss_shifts_labels", False)  # transformers 5: causal LMs
            total = counted(inputs["labels"], shifted)
            loss = 0.0
            for part in parts:
                share = 1.0 if divided else counted(part["labels"], shifted) / total
                loss = loss + whole(model, part, num_items_in_batch=num_items_in_batch) * share
            return loss

    return LengthSplitTrainer
