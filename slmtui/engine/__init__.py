"""The local GPT engine: tensors only (the model, its tokenizer, sampling, decoding, weights, evaluation).

It never imports Textual, the TUI or the trainer, and this package imports nothing itself: every name is imported
from the module that defines it, so importing one torch-free piece never loads torch."""
