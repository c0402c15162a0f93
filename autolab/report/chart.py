"""progress.png: val_bpb per experiment, as autoresearch's progress chart draws it.

Kept experiments are green points joined by a running-best step line and annotated with their
descriptions; discards are faint grey points; crash, timeout and invalid runs, which have no
score, are red x marks along the top edge. Discards far worse than the baseline are pinned to
the top edge as grey triangles so that they do not squash the interesting part of the axis.
"""

import textwrap
from pathlib import Path

from autolab.track.ledger import ExperimentView
from autolab.views.status import FAILED, plural, score

KEEP_COLOR = "#2ca02c"
DISCARD_COLOR = "#b0b0b0"
FAIL_COLOR = "#d62728"
EDGE = 0.965  # height of the marks along the top edge, in axes units
LABEL_WIDTH = 38  # characters of a kept experiment's description shown by its point


def progress_chart(views: list[ExperimentView], baseline_bpb: float | None, path: Path) -> Path:
    """Draw the chart of `views` (one session's experiments) to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = [v for v in views if v.kind != "recheck"]  # a re-check shares its candidate's point
    scored = [v for v in runs if v.status in ("keep", "discard") and score(v) is not None]
    kept = [v for v in scored if v.status == "keep"]
    discarded = [v for v in scored if v.status == "discard"]
    failed = [v for v in runs if v.status in FAILED]

    fig, ax = plt.subplots(figsize=(12, 6), dpi=120)
    low, high = _limits([score(v) for v in kept], [score(v) for v in discarded], baseline_bpb)
    ax.set_ylim(low, high)
    if runs:
        ax.set_xlim(min(v.number for v in runs) - 0.7, max(v.number for v in runs) + 0.7)

    inside = [v for v in discarded if score(v) <= high]
    above = [v for v in discarded if score(v) > high]
    if inside:
        ax.scatter([v.number for v in inside], [score(v) for v in inside], s=22,
                   c=DISCARD_COLOR, alpha=0.7, label="discarded", zorder=2)  # fmt: skip
    if above:
        ax.scatter([v.number for v in above], [EDGE] * len(above), s=30, marker="^",
                   c=DISCARD_COLOR, transform=ax.get_xaxis_transform(), clip_on=False,
                   label="discarded, off the scale", zorder=2)  # fmt: skip
    if failed:
        # x in data units, y in axes units: the marks sit on the top edge whatever the scale.
        ax.scatter([v.number for v in failed], [EDGE] * len(failed), s=40, marker="x",
                   c=FAIL_COLOR, transform=ax.get_xaxis_transform(), clip_on=False,
                   label="crash / timeout / invalid", zorder=3)  # fmt: skip
    if kept:
        _running_best(ax, kept, max(v.number for v in runs))
    if baseline_bpb is not None:
        ax.axhline(baseline_bpb, color="#888888", lw=0.8, ls="--", zorder=1)
        ax.annotate("baseline", (1.0, baseline_bpb), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, color="#666666")  # fmt: skip

    candidates = sum(1 for v in runs if v.kind == "candidate")
    improvements = sum(1 for v in kept if v.kind == "candidate")
    title = f"{plural(candidates, 'experiment')}, {plural(improvements, 'kept improvement')}"
    ax.set_title(f"autolab progress: {title}", fontsize=13, loc="left")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("experiment #")
    ax.set_ylabel("validation bits per byte (lower is better)")
    ax.grid(True, color="#eeeeee", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if runs:
        ax.legend(loc="lower left", frameon=False, fontsize=9)
    else:
        ax.text(0.5, 0.5, "no experiments yet", ha="center", va="center",
                transform=ax.transAxes, color="#888888")  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _running_best(ax, kept: list[ExperimentView], last_number: int) -> None:
    """The best score so far as a step line, kept points in green, their descriptions beside."""
    xs, ys, best = [], [], None
    for v in kept:
        if best is None or score(v) < best:
            best = score(v)
        xs.append(v.number)
        ys.append(best)
    xs.append(last_number + 0.5)
    ys.append(best)
    ax.step(xs, ys, where="post", color=KEEP_COLOR, lw=1.8, alpha=0.85, label="running best",
            zorder=3)  # fmt: skip
    ax.scatter([v.number for v in kept], [score(v) for v in kept], s=46, c=KEEP_COLOR,
               edgecolors="white", linewidths=0.8, label="kept", zorder=4)  # fmt: skip
    for v in kept:
        if v.kind != "candidate":
            continue
        label = textwrap.shorten(" ".join(v.description.split()), LABEL_WIDTH, placeholder="…")
        # Up and to the right: the step line leaves a kept point horizontally to the right and
        # reaches it from above on the left, so this corner is free.
        ax.annotate(label, (v.number, score(v)), xytext=(5, 5), textcoords="offset points",
                    fontsize=8, color="#1a6e1a", rotation=25, rotation_mode="anchor",
                    ha="left", va="bottom")  # fmt: skip


def _limits(kept: list[float], discarded: list[float], baseline: float | None):
    """y limits: every kept score and the baseline in view, discards only when near them."""
    anchors = kept + ([baseline] if baseline is not None else [])
    if not anchors:
        anchors = discarded or [0.0, 1.0]
    low, high = min(anchors), max(anchors)
    span = max(high - low, 0.02 * max(abs(high), 1e-3))
    near = [d for d in discarded if d <= high + 1.5 * span]
    high = max([high, *near])
    low = min([low, *discarded]) if discarded else low
    pad = 0.08 * max(high - low, span)
    return low - pad, high + 2 * pad  # the top keeps a free row for the edge marks
