"""The progress axis every trial shares, training samples seen, and the evaluations scheduled on it: a
trial of any batch size, accumulation or model is evaluated, reported and pruned at the same points."""

from __future__ import annotations

from transformers import TrainerCallback


def _micro_batch(args) -> int:
    """Rows per micro-batch over all processes (`train_batch_size` counts DataParallel's GPUs)."""
    return args.train_batch_size * args.world_size


def effective_batch(args) -> int:
    """Samples per optimizer step: micro-batch x accumulation x processes."""
    return _micro_batch(args) * args.gradient_accumulation_steps


def steps_per_epoch(args, n_train: int) -> int:
    """Optimizer steps in one pass over the train rows, as Trainer counts them: its dataloader's batches
    (the last one short, or dropped with dataloader_drop_last) over the accumulation, rounded up."""
    micro = _micro_batch(args)
    batches = n_train // micro if args.dataloader_drop_last else -(-n_train // micro)
    return max(-(-batches // args.gradient_accumulation_steps), 1)


def rows_per_epoch(args, n_train: int) -> int:
    """The rows one epoch trains on: all of them, or whole micro-batches only with dataloader_drop_last."""
    return n_train // _micro_batch(args) * _micro_batch(args) if args.dataloader_drop_last else n_train


def samples_seen(step: int, args, n_train: int) -> int:
    """Training samples seen after `step` optimizer steps: full epochs times the rows, plus the steps of
    the current epoch times the effective batch (the epoch's last, short batch counted as it is)."""
    per_epoch, rows = steps_per_epoch(args, n_train), rows_per_epoch(args, n_train)
    epochs, into = divmod(step, per_epoch)
    return epochs * rows + min(into * effective_batch(args), rows)


def budget_samples(args, max_steps: int, n_train: int) -> int:
    """A trial's training budget in samples: its epochs times the train rows (the same for every batch
    size), or with `max_steps` what it has seen at its last step."""
    if args.max_steps > 0:
        return samples_seen(max_steps, args, n_train)
    return round(rows_per_epoch(args, n_train) * args.num_train_epochs)


def interval_samples(every: float, budget: int) -> float:
    """The samples between two evaluations: `every` up to 1 is a fraction of the budget."""
    return every * budget if every <= 1 else float(every)


class EvaluationSchedule(TrainerCallback):
    """Evaluate (and log the train loss) at the first step at which the trial has seen each scheduled
    point of samples, and at the last step. `point` is the axis value of the evaluation about to run,
    the key its objective is reported under: the scheduled point, so two trials evaluated one batch
    apart are still compared at one key. `final_in_loop=False` leaves the last step's evaluation to the
    caller (intermediate evaluations on a subsample, the final one on the whole eval split)."""

    def __init__(self, every: float, n_train: int, final_in_loop: bool = True) -> None:
        self.every = every
        self.n_train = n_train
        self.final_in_loop = final_in_loop
        self.budget = 0
        self.point = 0  # the axis value of the latest (or the coming) evaluation
        self.last_intermediate: int | None = None
        self._interval = 1.0
        self._next = 1  # the index of the next scheduled point

    def on_train_begin(self, args, state, control, **kwargs):
        self.budget = budget_samples(args, state.max_steps, self.n_train)
        self._interval = max(interval_samples(self.every, self.budget), 1.0)
        self._next = 1
        # The point of the last evaluation before the end (as on_step_end places it, at the step before the
        # last), the last a pruner can act on; None when the trial is evaluated at its end only.
        due = int(samples_seen(state.max_steps - 1, args, self.n_train) // self._interval)
        while due >= 1 and round(due * self._interval) >= self.budget:
            due -= 1
        self.last_intermediate = round(due * self._interval) if due >= 1 else None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            self.point = self.budget
            control.should_log = True  # the last train loss, for the final curve point and the divergence guard
            if self.final_in_loop:
                control.should_evaluate = True
            return control
        seen = samples_seen(state.global_step, args, self.n_train)
        due = int(seen // self._interval)  # the scheduled points passed so far
        if due >= self._next and round(due * self._interval) < self.budget:
            self.point, self._next = round(due * self._interval), due + 1
            control.should_evaluate = control.should_log = True
        return control

    def at_end(self) -> None:
        """The evaluation about to run scores the final weights: it stands at the budget point."""
        self.point = self.budget
