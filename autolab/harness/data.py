"""Prepared token shards as the harness sees them: metadata, token arrays, random batches."""

import json
from pathlib import Path

import numpy as np
import torch


def read_meta(data_dir: Path) -> dict:
    return json.loads((Path(data_dir) / "meta.json").read_text())


def read_tokens(path: Path, meta: dict) -> np.ndarray:
    """A split's tokens, memory-mapped (never loaded whole)."""
    return np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r")


def read_token_bytes(data_dir: Path) -> np.ndarray:
    """How many UTF-8 bytes each token id stands for (int32, one per id)."""
    return np.load(Path(data_dir) / "token_bytes.npy")


class BatchSampler:
    """Random windows of a token array as (inputs, targets) of shape (B, T) on `device`.

    Windows start at uniformly random offsets drawn from a seeded generator, so a run's batches
    depend only on its seed. On CUDA the batch is built in pinned memory and copied
    asynchronously, so the copy overlaps the previous step's compute.
    """

    def __init__(self, tokens: np.ndarray, device: str, seed: int):
        self.tokens = tokens
        self.device = torch.device(device)
        self.generator = np.random.default_rng(seed)
        self.tokens_served = 0

    def __call__(self, batch_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.tokens) <= seq_len + 1:
            raise ValueError(
                f"sequence length {seq_len} does not fit in {len(self.tokens)} training tokens"
            )
        starts = self.generator.integers(0, len(self.tokens) - seq_len - 1, size=batch_size)
        rows = np.stack([self.tokens[s : s + seq_len + 1] for s in starts]).astype(np.int64)
        batch = torch.from_numpy(rows)
        self.tokens_served += batch_size * seq_len
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        return batch[:, :-1], batch[:, 1:]
