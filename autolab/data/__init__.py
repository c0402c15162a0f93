"""Datasets, the train/dev/val split, tokenizers and prepared token shards."""

from autolab.data.prepare import Prepared, prepare, read_tokens, sealed_val_path
from autolab.data.sources import SOURCES
from autolab.data.split import MIN_VAL_TOKENS
from autolab.data.tokenizers import load_tokenizer

__all__ = [
    "MIN_VAL_TOKENS",
    "SOURCES",
    "Prepared",
    "load_tokenizer",
    "prepare",
    "read_tokens",
    "sealed_val_path",
]
