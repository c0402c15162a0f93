"""`autolab lr-find`: run the learning-rate range test on a workspace's train.py and read it.

The harness sweeps a multiplier on the recipe's learning rates (see autolab.harness.lr_range);
this module runs the sweep, smooths the loss curve, suggests a multiplier and plots the curve.
The suggestion is the multiplier where the smoothed loss falls fastest against log(lr), which
sits safely below the point of divergence (the heuristic of fastai's lr_find).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from autolab.errors import UsageError

SMOOTHING = 0.9  # exponential moving average of the loss, with bias correction


@dataclass
class LRSweep:
    scales: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float  # multiplier on the recipe's learning rates
    lowest: float  # multiplier where the smoothed loss is lowest


def read_sweep(metrics_path: Path) -> LRSweep:
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    points = [(r["lr_scale"], r["loss"]) for r in records if "lr_scale" in r]
    points = [(s, loss) for s, loss in points if math.isfinite(loss)]
    if len(points) < 10:
        raise UsageError(
            "the range test recorded too few steps: does train.py multiply its learning rates "
            "by run.lr_scale? (the gpt and mlp recipes do)"
        )
    scales, losses = zip(*points, strict=True)
    smoothed, average = [], 0.0
    for i, loss in enumerate(losses, start=1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed.append(average / (1 - SMOOTHING**i))
    lowest_at = min(range(len(smoothed)), key=smoothed.__getitem__)
    # Steepest descent against log(scale), before the lowest point (after it, it diverges).
    slopes = [
        (smoothed[i + 1] - smoothed[i]) / (math.log(scales[i + 1]) - math.log(scales[i]))
        for i in range(max(1, lowest_at))
    ]
    steepest = min(range(len(slopes)), key=slopes.__getitem__)
    return LRSweep(list(scales), list(losses), smoothed, scales[steepest], scales[lowest_at])


def plot_sweep(sweep: LRSweep, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    ax.plot(sweep.scales, sweep.losses, color="#bbbbbb", linewidth=0.8, label="loss")
    ax.plot(sweep.scales, sweep.smoothed, color="#1f77b4", linewidth=2, label="smoothed")
    ax.axvline(sweep.suggested, color="#2ca02c", linestyle="--",
               label=f"suggested ×{sweep.suggested:.3g}")  # fmt: skip
    ax.set_xscale("log")
    top = min(max(sweep.smoothed[: max(2, len(sweep.smoothed) // 10)]) * 1.3, max(sweep.losses))
    ax.set_ylim(min(sweep.smoothed) * 0.95, top)
    ax.set_xlabel("learning-rate multiplier (× the recipe's learning rates)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".partial.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
