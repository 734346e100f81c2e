"""hpsearch: hyperparameter search for fine-tuning language models, on Optuna and transformers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hpsearch")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
