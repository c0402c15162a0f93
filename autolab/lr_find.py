"""`autolab lr-find`: run the learning-rate range test on a workspace's train.py and read it.

The harness sweeps a multiplier on the recipe's learning rates (see autolab.harness.lr_range);
this module runs the sweep, smooths the loss curve, suggests a multiplier and plots the curve.

The rule: the suggestion is SUGGESTED_FRACTION (half) of the multiplier where the smoothed loss
is lowest, a point on the descending part of the curve, below where training turns unstable.
The steepest descent (the heuristic of fastai's `steep`) is reported too, but not suggested:
with the rate rising as training goes on, the steepest fall is the first few hundred steps'
easy progress (unigram statistics), at a rate far too low for a whole run. On the gpt recipe
and names (2026-11-29, 2 CPU cores) it sat at x0.019 with the minimum at x1.75, where the
recipe's own rates are x1.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from autolab.errors import UsageError

SMOOTHING = 0.9  # exponential moving average of the loss, with bias correction
SUGGESTED_FRACTION = 0.5  # of the lowest point's multiplier
MIN_DESCENT_STEPS = 5  # a minimum this close to the start means the loss never fell


@dataclass
class LRSweep:
    scales: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float  # multiplier on the recipe's learning rates
    lowest: float  # multiplier where the smoothed loss is lowest
    steepest: float  # multiplier where the smoothed loss falls fastest against log(lr)


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
    if lowest_at < MIN_DESCENT_STEPS:
        raise UsageError(
            f"the loss never fell during the sweep (lowest at x{scales[lowest_at]:.3g}, its "
            "start): check that train.py learns at all with `autolab train`"
        )
    slopes = [
        (smoothed[i + 1] - smoothed[i]) / (math.log(scales[i + 1]) - math.log(scales[i]))
        for i in range(lowest_at)
    ]
    steepest = min(range(len(slopes)), key=slopes.__getitem__)
    lowest = scales[lowest_at]
    return LRSweep(
        list(scales), list(losses), smoothed, lowest * SUGGESTED_FRACTION, lowest, scales[steepest]
    )


def plot_sweep(sweep: LRSweep, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig = sweep_figure(sweep, title)
    tmp = path.with_name(path.stem + ".partial.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def sweep_figure(sweep: LRSweep, title: str):
    """The curve, raw and smoothed, with the suggestion, the lowest point and the steepest fall
    marked as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    ax.plot(sweep.scales, sweep.losses, color="#bbbbbb", linewidth=0.8, label="loss")
    ax.plot(sweep.scales, sweep.smoothed, color="#1f77b4", linewidth=2, label="smoothed")
    ax.axvline(sweep.suggested, color="#2ca02c", linestyle="--",
               label=f"suggested ×{sweep.suggested:.3g} (half the lowest)")  # fmt: skip
    ax.axvline(sweep.lowest, color="#888888", linestyle=":",
               label=f"lowest loss ×{sweep.lowest:.3g}")  # fmt: skip
    ax.axvline(sweep.steepest, color="#ff7f0e", linestyle=":", linewidth=1,
               label=f"steepest fall ×{sweep.steepest:.3g}")  # fmt: skip
    ax.set_xscale("log")
    top = min(max(sweep.smoothed[: max(2, len(sweep.smoothed) // 10)]) * 1.3, max(sweep.losses))
    ax.set_ylim(min(sweep.smoothed) * 0.95, top)
    ax.set_xlabel("learning-rate multiplier (× the recipe's learning rates)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
