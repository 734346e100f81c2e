"""A study's user attributes and the keys of a learning-curve point."""

from __future__ import annotations

from hpsearch.results.record.key import RecordKey


class StudyAttr(RecordKey):
    """A study's user attributes (`optuna.load_study(...).user_attrs`)."""

    SPEC = ("spec", "dict", "", "The resolved study file, overrides applied.")
    LABELS = ("labels", "list[str]", "", "The label order, i.e. the model's `id2label`.")
    HPSEARCH_VERSION = ("hpsearch_version", "str", "", "The hpsearch version that last ran the study.")
    BEST_MODEL_TRIAL = ("best_model_trial", "int", "", "The trial whose model `model.save_best` kept.")
    CONFIRMS = ("confirms", "str", "", "A confirmation study (`hpsearch confirm`): the name of the search it confirms.")
    PRUNER_BUDGET = (
        "pruner_budget",
        "dict",
        "",
        "The training budget a pruner's fractional `min_resource` and `max_resource` are resolved against:"
        " `{samples, trial}`, the budget of the first trial to start training, written once; every later"
        " process, resume and `hpsearch simulate` reads it.",
    )


class CurveKey(RecordKey):
    """The keys of one point of a trial's `curve` (one point per evaluation)."""

    STEP = ("step", "int", "steps", "The optimizer step of the evaluation.")
    SAMPLES = (
        "samples",
        "int",
        "samples",
        "The point of the progress axis the evaluation was reported at: training samples seen (the trial"
        " had seen at least this many, at most one batch more; the last evaluation is at the trial's whole"
        " budget). Absent in studies stored before schema version 3.",
    )
    EVAL_ROWS = ("eval_rows", "int", "rows", "The eval rows scored (`evaluation.subsample`'s, or the split's).")
    EPOCH = ("epoch", "float", "epochs", "The epoch of the evaluation (4 decimals).")
    TRAIN_LOSS = (
        "train_loss",
        "float or null",
        "",
        "The last logged train loss (the final evaluation can fall between two logs).",
    )
    TRAIN_LOSS_STEP = ("train_loss_step", "int or null", "steps", "The step `train_loss` was logged at.")
    EVAL_LOSS = (
        "eval_loss",
        "float",
        "",
        "The eval split's loss (causal-lm, seq2seq: the cross-entropy over all its counted tokens).",
    )
    TRAIN_EVAL_GAP = ("train_eval_gap", "float or null", "", "`eval_loss - train_loss`, null without both.")


# Every other key of a curve point is an evaluation metric, named as Trainer names it.
EVAL_PREFIX = "eval_"
CURVE_METRICS_MEANING = (
    "Each evaluation metric: `eval_accuracy`, `eval_f1_macro` (`causal-lm`: `eval_perplexity`), each"
    " `eval_<metric>` of `generation.metrics`, and the standard errors the noise-aware pruner reads:"
    " `eval_accuracy_se`, `eval_loss_se` (`causal-lm`: `eval_perplexity_se`)."
)
