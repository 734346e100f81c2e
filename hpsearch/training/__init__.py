"""One trial: TrainingArguments, the Trainer and its callbacks, generation metrics, LoRA, models, retraining."""
