"""A trial's user attributes: what hpsearch records for every trial, key by key."""

from __future__ import annotations

from hpsearch.results.record.key import RecordKey
from hpsearch.results.versions import ALWAYS, CUDA, CUDNN, WHEN_IMPORTED


class TrialAttr(RecordKey):
    """A trial's user attributes (`optuna.load_study(...).trials[i].user_attrs`)."""

    TRAINING_ARGUMENTS = (
        "training_arguments",
        "dict",
        "",
        "The arguments hpsearch passed (defaults, `train`, params): what `export` writes.",
    )
    TRAINING_ARGUMENTS_ALL = (
        "training_arguments_all",
        "dict",
        "",
        "The complete `TrainingArguments.to_dict()` as the trial ran.",
    )
    CURVE = (
        "curve",
        "list[dict]",
        "",
        "One point per evaluation (its keys: the table below). The objective is also reported as Optuna"
        " intermediate values keyed by training samples seen, the point's `samples` (what pruners read;"
        " studies stored before schema version 3 keyed them by step).",
    )
    WALL_TIME_S = ("wall_time_s", "float", "s", "The trial's whole time.")
    DEVICE_SECONDS = (
        "device_seconds",
        "float",
        "s",
        "The device time the trial held (its wall time, times `ranks` on several devices);"
        " `budget.device_hours` sums it.",
    )
    TRAIN_SECONDS = ("train_seconds", "float", "s", "The trial's time inside `Trainer.train()`.")
    STEPS_TRAINED = (
        "steps_trained",
        "int",
        "steps",
        "How far it got (a pruned trial's `steps_trained` is where it stopped).",
    )
    MAX_STEPS = ("max_steps", "int", "steps", "The optimizer steps its schedule planned.")
    BUDGET_SAMPLES = (
        "budget_samples",
        "int",
        "samples",
        "The training samples its schedule planned, set when training starts (its last evaluation's `samples`"
        " when it trains to the end). Absent with `objective.cost`, and in trials run before hpsearch recorded"
        " it.",
    )
    TRAIN_SAMPLES_PER_SECOND = (
        "train_samples_per_second",
        "float",
        "samples/s",
        "Throughput (Trainer's figure; for a pruned trial, samples trained over `train_seconds`).",
    )
    TRAIN_LOSS = ("train_loss", "float", "", "Trainer's mean train loss over the whole run, when training finished.")
    PEAK_MEMORY_MB = (
        "peak_memory_mb",
        "float",
        "MiB",
        "Peak GPU memory allocated, or the process's peak resident memory on the CPU (reset per trial).",
    )
    MEMORY_BASELINE_MB = (
        "memory_baseline_mb",
        "float",
        "MiB",
        "Memory the worker held before the trial: GPU memory allocated by tensors, or the process's resident"
        " memory on the CPU.",
    )
    MEMORY_AFTER_MB = (
        "memory_after_mb",
        "float",
        "MiB",
        "The same after the trial was cleaned up (the model, optimizer and CUDA cache freed). After the first"
        " trial (which warms caches) it stays flat; a growing value is a leak.",
    )
    DEVICE = ("device", "str", "", "Where it ran (`cuda:0 (NAME)` or `cpu`).")
    RANKS = ("ranks", "int", "", "The processes it trained on with DDP (`resources.devices_per_trial`); unset: one.")
    RANK_STEPS = ("rank_steps", "list[int]", "steps", "With ranks: the optimizer step each rank left training at.")
    SEED = ("seed", "int", "", "The seed it ran with.")
    DATA_FINGERPRINT = (
        "data_fingerprint",
        "str",
        "",
        "Which data it trained on: sha256 of the rows after subsampling.",
    )
    ERROR = ("error", "str", "", "Why a failed trial failed. The sweep goes on.")
    TRACEBACK = ("traceback", "str", "", "The failed trial's traceback (its last 4,000 characters).")
    PRUNE_REASON = (
        "prune_reason",
        "str",
        "",
        "Why a pruned trial was pruned: `pruner`, `diverged: train loss ... at step N`, or `skipped: ...`.",
    )
    PRUNE_EVIDENCE = (
        "prune_evidence",
        "dict",
        "",
        "Why the pruner pruned: at `samples`, the trial's `value` and the pruner's `bar` (median, percentile"
        " or the rung's worst promoted value), the evaluation's `uncertainty` (its standard error; null when"
        " the metric has none), `eval_rows`, and `tolerance_se`: the gap between value and bar exceeded"
        " `tolerance_se x uncertainty`.",
    )
    SPARED = (
        "spared",
        "list[dict]",
        "",
        "Each evaluation at which the pruner proposed to prune but the gap to its bar was within"
        " `tolerance_se` standard errors (the same keys as `prune_evidence`, `pruned` false).",
    )
    OOM_RETRIES = (
        "oom_retries",
        "list[dict]",
        "",
        "The micro-batches that ran out of memory before the one that fit (each: per-device train batch,"
        " gradient accumulation, per-device eval batch).",
    )
    FAIL_REASON = (
        "fail_reason",
        "str",
        "",
        "`oom` for a trial that ran out of memory even at a per-device batch of 1.",
    )
    INTERRUPTED = ("interrupted", "bool", "", "A trial cut short by Ctrl-C or SIGTERM; it is not counted.")
    CONFIRM_OF = ("confirm_of", "int", "", "A trial of the study NAME.confirm: the search trial it trains again.")
    RETRY_OF = (
        "retry_of",
        "int",
        "",
        "The interrupted trial whose params this one re-runs (queued at once by the interrupted process;"
        " run by the next worker or on resume).",
    )
    WORKER = (
        "worker",
        "str",
        "",
        "The process that ran it, `host:pid`, set when it starts: a run on the same host that finds it RUNNING"
        " with that process gone fails it and re-runs it at once.",
    )
    SLURM_JOB = ("slurm_job", "str", "", "Its Slurm job, set when it starts: `JOBID_INDEX` in an array, else `JOBID`.")
    VERSIONS = (
        "versions",
        "dict",
        "",
        "The versions it ran with, read in its own process at its end (`{package: version}`): "
        + ", ".join(ALWAYS)
        + f", `{CUDA}` and `{CUDNN}` on a CUDA build, and, when the trial imported them, "
        + ", ".join(WHEN_IMPORTED)
        + " and the package of each user metric it loaded. Absent in trials run before hpsearch recorded it.",
    )
    FINETUNE = (
        "finetune",
        "str or dict",
        "",
        "`full`, or the LoRA adapter's settings (`method`, `r`, `alpha`, `dropout`, `target_modules`).",
    )
    TRAINABLE_PARAMETERS = ("trainable_parameters", "int", "", "The model's parameters that trained.")
    TOTAL_PARAMETERS = ("total_parameters", "int", "", "All of the model's parameters.")
    WEIGHTS_DTYPE = (
        "weights_dtype",
        "str",
        "",
        "The dtype of the model's weights as it trained (`float32`, or the checkpoint's under a LoRA adapter"
        " on a GPU).",
    )
    EARLY_STOPPED_AT_STEP = (
        "early_stopped_at_step",
        "int",
        "steps",
        "The step a trial stopped at under `early_stopping` (its last curve step and its `steps_trained`,"
        " below `max_steps`); absent when it trained to the end.",
    )
    BEST_AT_STEP = (
        "best_at_step",
        "int",
        "steps",
        "With `objective.at: best`: the step of the curve point whose evaluation is the trial's value (the"
        " first of equal bests; a NaN never wins); `export` and `hpsearch train` stop there.",
    )
    BEST_AT_SAMPLES = (
        "best_at_samples",
        "int",
        "samples",
        "With `objective.at: best`: that point's `samples`, its place on the progress axis.",
    )
    TRAIN_EVAL_GAP = (
        "train_eval_gap",
        "float or null",
        "",
        "`eval_loss - train_loss` at the trial's last evaluation (null when either is missing); above 0 the"
        " model fits its training data better than the eval split.",
    )
    AUGMENTATION = (
        "augmentation",
        "dict",
        "",
        "With `augmentation.ops`: `ops`, the trial's `probability`, the `seed` it was drawn with, and"
        " `rows_changed` (train rows whose input text changed).",
    )
    GENERATED_EXAMPLES = (
        "generated_examples",
        "list[dict]",
        "",
        "With `generation`: three of the last evaluation's `{input, reference, output}` (each cut to 300"
        " characters), to see what the model writes.",
    )
    MODEL = (
        "model",
        "str",
        "",
        "The folder or hub id the trial's model was loaded from (its `search.model` choice, resolved).",
    )
    DROPOUT = (
        "dropout",
        "dict",
        "",
        "The dropout probabilities set in its config (`{name: value}`); absent when the study leaves dropout"
        " to the model.",
    )
    SAVED_MODEL = (
        "saved_model",
        "str",
        "",
        "Where `model.save_best` saved this trial's model (it was the best when it finished).",
    )
    SKIPPED = (
        "skipped",
        "str",
        "",
        "Why a trial was skipped before it trained: two workers started trials at the same moment and the one"
        " with the higher number would have exceeded the budget or taken a grid point the other holds. It is"
        " recorded as pruned and not counted; status and the report show it as SKIPPED.",
    )
    WARM_START = (
        "warm_start",
        "str",
        "",
        "`STUDY#N`: a trial queued by `--warm-start` with trial N's params of another study.",
    )
    ENQUEUED_FROM = ("enqueued_from", "str", "", "The file `--enqueue` queued this trial's params from.")
