"""Gradient accumulation that trains as the effective batch would, whatever the model's loss does.

Trainer (transformers 5) passes `num_items_in_batch`, the accumulated batch's label count, to any model
whose forward takes `**kwargs`, and then trusts the loss to be divided by it: it no longer divides by
the accumulation steps itself. Many heads take `**kwargs` and ignore it (BERT's sequence classifier,
BART's and T5's generation heads: a mean over the micro-batch), so with `gradient_accumulation_steps`
at N their loss, its gradient and the logged train loss are N times too large (transformers issue
47688). hpsearch accumulates where a study asks and where an out-of-memory retry halves the batch, and
promises the same training as the effective batch: `match_accumulation` asks the model once, on two
training rows, and where it ignores the count, Trainer goes back to dividing the micro-batch's mean by
the steps."""

from __future__ import annotations

import torch


def honours_item_count(trainer) -> bool:
    """Whether the trainer's model divides its loss by a `num_items_in_batch` it is given: its loss on
    two training rows, in eval mode (no dropout, no random draw), with a count of 1 and of 2."""
    model = trainer.model
    dataset = trainer.train_dataset
    rows = trainer._remove_unused_columns(dataset.select(range(min(2, len(dataset)))), description="training")
    device = next(model.parameters()).device
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in trainer.data_collator(list(rows)).items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            one, two = (model(**batch, num_items_in_batch=torch.tensor(n, device=device)).loss for n in (1, 2))
    except Exception:  # noqa: BLE001 - a model that cannot take the count is one that does not honour it
        return False
    finally:
        model.train(was_training)
    return bool(torch.isclose(one, 2 * two, rtol=1e-4))


def match_accumulation(trainer) -> None:
    """Make an accumulating (or length-splitting) trainer scale the loss right: where Trainer would pass
    the label count to a model that ignores it, it stops passing it and divides the loss by the
    accumulation steps instead. Nothing changes with neither (the two are then one), nor where Trainer's
    label smoother or a `compute_loss_func`, which read the count themselves, compute the loss."""
    splits = getattr(trainer, "length_split", 1) > 1  # training.length_split sums micro-batches the same way
    if (trainer.args.gradient_accumulation_steps <= 1 and not splits) or not trainer.model_accepts_loss_kwargs:
        return
    if trainer.label_smoother is not None or trainer.compute_loss_func is not None:
        return
    if not honours_item_count(trainer):
        trainer.model_accepts_loss_kwargs = False
