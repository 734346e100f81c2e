"""Data: local files or hub datasets, subsampling, the tokenization cache, and augmentation of the train split."""
