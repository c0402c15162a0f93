"""A bar chart of the most frequent tokens of a prepared dataset's train split.

Counts come from train only, never the sealed val. Drawn with matplotlib's object API (a
`Figure` renders with Agg on its own, no pyplot and no display needed).
"""

import os
from pathlib import Path

import numpy as np

from autolab.data.prepare import read_tokens
from autolab.data.tokenizers import load_tokenizer
from autolab.errors import UsageError
from autolab.harness.data import read_meta


def train_token_counts(data_dir: Path) -> np.ndarray:
    """How often each token id occurs in the train split, shape (vocab_size,)."""
    meta = read_meta(data_dir)
    train = read_tokens(Path(data_dir) / "train.bin", meta)
    return np.bincount(train, minlength=meta["vocab_size"])


def plot_token_frequencies(data_dir: Path, out_png: Path, top: int = 30) -> Path:
    """Write a PNG bar chart of the `top` most frequent train tokens; returns its path."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise UsageError("plotting needs matplotlib: pip install 'matplotlib>=3.8,<4'") from err
    if top < 1:
        raise UsageError("the chart needs at least one token (top >= 1)")
    meta = read_meta(data_dir)
    tokenizer = load_tokenizer(data_dir)
    counts = train_token_counts(data_dir)
    ids = np.argsort(-counts, kind="stable")[:top]
    ids = ids[counts[ids] > 0]
    shares = counts[ids] / max(int(counts.sum()), 1)
    labels = [tokenizer.token_label(int(i)) for i in ids]

    fig = Figure(figsize=(max(6.0, 0.32 * len(ids) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(ids)), shares * 100, color="#4c72b0")
    ax.set_xticks(range(len(ids)), labels, rotation=0 if max(map(len, labels)) <= 2 else 60)
    ax.set_xlim(-0.6, len(ids) - 0.4)
    ax.set_ylabel("share of train tokens (%)")
    ax.set_title(
        f"{meta['dataset']} ({meta['tokenizer']}): top {len(ids)} of {meta['vocab_size']:,} "
        f"tokens, {int(counts.sum()):,} train tokens"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=120)
        tmp.replace(out_png)
    finally:
        tmp.unlink(missing_ok=True)
    return out_png
