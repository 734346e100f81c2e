"""hpsearch: hyperparameter search for fine-tuning language models, on Optuna and transformers."""

__version__ = "0.1.0"
