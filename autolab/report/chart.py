"""progress.png: val_bpb per experiment, as autoresearch's progress chart draws it.

Every number is the branch's standing (`track.standings`): the reference is a dashed line, the
running best a green step line from the reference through each kept candidate (labelled with its
description), with the keep band shaded below it, one line per hardware fingerprint (a branch
continued on other hardware starts again from that fingerprint's reference); baseline runs are
blue diamonds (measurements of the reference, not improvements); discards are faint grey points;
crash, timeout and invalid runs, which have no score, are red x marks along the top edge;
confirm runs (the reference and the best re-run after the search) are hollow diamonds and
circles. Discards far worse than the reference are pinned to the top edge as grey triangles so
that they do not squash the axis.
Each session continued with --resume is marked on the x axis where it starts.
The person's own `autolab train` runs (`report.manual.ManualTrace`), alone or beside a session,
are purple squares: filled for a new best, hollow for not better, x marks on the top edge for a
failed run; their best so far is a dashed purple step line with their noise band shaded below.
"""

import textwrap
from pathlib import Path

from autolab.hardware import label as hardware_label
from autolab.track.ledger import FAILED_STATUSES, ExperimentView
from autolab.track.standings import Standings, best_lines
from autolab.views.status import plural

KEEP_COLOR = "#2ca02c"
DISCARD_COLOR = "#b0b0b0"
FAIL_COLOR = "#d62728"
PRUNED_COLOR = "#9467bd"
EDGE = 0.965  # height of the marks along the top edge, in axes units
LABEL_WIDTH = 38  # characters of a kept experiment's description shown by its point


BASELINE_COLOR = "#6f7fd8"
MANUAL_COLOR = "#8e44ad"


def progress_chart(
    views: list[ExperimentView], standings: Standings, path: Path, manual=None
) -> Path:
    """Draw the chart of `views` (a branch's experiments) and of `manual` (a ManualTrace of the
    person's runs, if any) to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = {r.number: r for r in standings.rows}

    def score(v: ExperimentView) -> float | None:
        return rows[v.number].score if v.number in rows else None

    ref = standings.reference
    baseline_bpb = ref.bpb if ref else None
    runs = [v for v in views if v.kind != "recheck"]  # a re-check shares its candidate's point
    scored = [v for v in runs if score(v) is not None]
    kept = [v for v in scored if v.status == "keep" and v.kind == "candidate"]
    baselines = [v for v in scored if v.kind == "baseline"]
    confirms = [v for v in scored if v.kind == "confirm"]
    discarded = [v for v in scored if v.status == "discard"]
    failed = [v for v in runs if v.status in FAILED_STATUSES]
    pruned = [v for v in runs if v.status == "pruned"]  # stopped early: no score either

    mine = _ManualPoints(manual)

    fig, ax = plt.subplots(figsize=(12, 6), dpi=120)
    low, high = _limits([score(v) for v in kept + baselines + confirms] + mine.kept_scores(),
                        [score(v) for v in discarded] + mine.other_scores(),
                        baseline_bpb)  # fmt: skip
    ax.set_ylim(low, high)
    numbers = [v.number for v in runs] + mine.numbers()
    if numbers:
        ax.set_xlim(min(numbers) - 0.7, max(numbers) + 0.7)

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
    if pruned:
        ax.scatter([v.number for v in pruned], [EDGE] * len(pruned), s=40, marker="v",
                   c=PRUNED_COLOR, transform=ax.get_xaxis_transform(), clip_on=False,
                   label="pruned (stopped early)", zorder=3)  # fmt: skip
    if baselines:
        ax.scatter([v.number for v in baselines], [score(v) for v in baselines], s=36,
                   marker="D", c=BASELINE_COLOR, label="baseline run", zorder=3)  # fmt: skip
    for recipe, marker, color in (("reference", "D", BASELINE_COLOR), ("best", "o", KEEP_COLOR)):
        shown = [v for v in confirms if rows[v.number].confirms == recipe]
        if shown:  # hollow: a re-run after the search, not a step of it
            ax.scatter([v.number for v in shown], [score(v) for v in shown], s=40, marker=marker,
                       facecolors="none", edgecolors=color, linewidths=1.5,
                       label=f"confirm run: {recipe}", zorder=3)  # fmt: skip
    if ref is not None and runs:
        _running_best(ax, kept, score, standings, max(v.number for v in runs))
    _session_marks(ax, views)
    mine.draw(ax, high)
    if baseline_bpb is not None:
        ax.axhline(baseline_bpb, color="#888888", lw=0.8, ls="--", zorder=1)
        ax.annotate("reference", (1.0, baseline_bpb), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, color="#666666")  # fmt: skip

    candidates = sum(1 for v in runs if v.kind == "candidate")
    improvements = sum(1 for v in kept if v.kind == "candidate")
    title = f"{plural(candidates, 'experiment')}, {plural(improvements, 'kept improvement')}"
    if mine.runs and not runs:
        title = f"{plural(len(mine.runs), 'run')} of yours, {plural(len(mine.kept), 'new best')}"
    elif mine.runs:
        title += f"; {plural(len(mine.runs), 'run')} of yours"
    ax.set_title(f"autolab progress: {title}", fontsize=13, loc="left")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("experiment #")
    ax.set_ylabel("validation bits per byte (lower is better)")
    ax.grid(True, color="#eeeeee", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if numbers:
        ax.legend(loc="lower left", frameon=False, fontsize=9)
    else:
        ax.text(0.5, 0.5, "no experiments yet", ha="center", va="center",
                transform=ax.transAxes, color="#888888")  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _running_best(ax, kept, score, standings: Standings, last_number: int) -> None:
    """The best so far as a step line per fingerprint (each row's `best_after`), the current
    reference's keep band shaded below its own line, kept points in green with their
    descriptions beside."""
    band = standings.reference.band
    lines = best_lines(standings, last_number)
    for i, line in enumerate(lines):
        ax.step(line.xs, line.ys, where="post", color=KEEP_COLOR, lw=1.8, alpha=0.85, zorder=3,
                label="running best" if i == 0 else None)  # fmt: skip
        if len(lines) > 1 and line.hardware:  # which machine each line was measured on
            ax.annotate(f"on {hardware_label(line.hardware)}", (line.xs[0], line.ys[0]),
                        xytext=(3, 4), textcoords="offset points", fontsize=7,
                        color="#1a6e1a", ha="left", va="bottom")  # fmt: skip
        if line.current and band > 0:
            ax.fill_between(line.xs, [y - band for y in line.ys], line.ys, step="post",
                            color=KEEP_COLOR, alpha=0.10, lw=0,
                            label=f"keep band ({band:.4f})", zorder=1)  # fmt: skip
    if not kept:
        return
    ax.scatter([v.number for v in kept], [score(v) for v in kept], s=46, c=KEEP_COLOR,
               edgecolors="white", linewidths=0.8, label="kept", zorder=4)  # fmt: skip
    for v in kept:
        label = textwrap.shorten(" ".join(v.description.split()), LABEL_WIDTH, placeholder="…")
        # Up and to the right: the step line leaves a kept point horizontally to the right and
        # reaches it from above on the left, so this corner is free.
        ax.annotate(label, (v.number, score(v)), xytext=(5, 5), textcoords="offset points",
                    fontsize=8, color="#1a6e1a", rotation=25, rotation_mode="anchor",
                    ha="left", va="bottom")  # fmt: skip


class _ManualPoints:
    """The person's runs on the chart: what `ManualTrace` holds, split as they are drawn."""

    def __init__(self, trace):
        views = trace.views if trace is not None else []
        rows = {r.number: r for r in trace.standings.rows} if views else {}
        self.band = trace.band if trace is not None else None
        self.runs = [v for v in views if v.kind != "recheck"]  # a repeat shares its run's point
        self.score = {n: r.score for n, r in rows.items() if r.score is not None}
        self.kept = [v for v in self.runs if v.status == "keep" and v.number in self.score]
        self.other = [v for v in self.runs if v.status != "keep" and v.number in self.score]
        self.failed = [v for v in self.runs if v.status in FAILED_STATUSES]

    def numbers(self) -> list[int]:
        return [v.number for v in self.runs]

    def kept_scores(self) -> list[float]:
        return [self.score[v.number] for v in self.kept]

    def other_scores(self) -> list[float]:
        return [self.score[v.number] for v in self.other]

    def draw(self, ax, high: float) -> None:
        if not self.runs:
            return
        edge = dict(transform=ax.get_xaxis_transform(), clip_on=False, zorder=3)
        if self.kept:
            ax.scatter([v.number for v in self.kept], self.kept_scores(), s=44, marker="s",
                       c=MANUAL_COLOR, edgecolors="white", linewidths=0.8,
                       label="your run: new best", zorder=4)  # fmt: skip
            self._best_line(ax)
        inside = [v for v in self.other if self.score[v.number] <= high]
        above = [v for v in self.other if self.score[v.number] > high]
        if inside:
            ax.scatter([v.number for v in inside], [self.score[v.number] for v in inside], s=40,
                       marker="s", facecolors="none", edgecolors=MANUAL_COLOR, linewidths=1.2,
                       label="your run: not better", zorder=3)  # fmt: skip
        if above:
            ax.scatter([v.number for v in above], [EDGE] * len(above), s=34, marker="^",
                       facecolors="none", edgecolors=MANUAL_COLOR,
                       label="your run: not better, off the scale", **edge)  # fmt: skip
        if self.failed:
            ax.scatter(
                [v.number for v in self.failed],
                [EDGE] * len(self.failed),
                s=44,
                marker="x",
                c=MANUAL_COLOR,
                label="your run: crash / timeout",
                **edge,
            )

    def _best_line(self, ax) -> None:
        """Your best so far, from your first new best to your last run, the band below it."""
        xs, ys, best = [], [], None
        for v in self.kept:
            score = self.score[v.number]
            best = score if best is None else min(best, score)
            xs.append(v.number)
            ys.append(best)
        xs.append(max(v.number for v in self.runs) + 0.5)
        ys.append(best)
        ax.step(xs, ys, where="post", color=MANUAL_COLOR, lw=1.5, ls="--", alpha=0.85,
                label="your best", zorder=3)  # fmt: skip
        if self.band:
            ax.fill_between(xs, [y - self.band for y in ys], ys, step="post",
                            color=MANUAL_COLOR, alpha=0.08, lw=0,
                            label=f"your noise band ({self.band:.4f})", zorder=1)  # fmt: skip
        for v in self.kept:
            label = textwrap.shorten(" ".join(v.description.split()), LABEL_WIDTH, placeholder="…")
            ax.annotate(label, (v.number, self.score[v.number]), xytext=(5, -5),
                        textcoords="offset points", fontsize=8, color=MANUAL_COLOR,
                        rotation=-25, rotation_mode="anchor", ha="left", va="top")  # fmt: skip


def _session_marks(ax, views: list[ExperimentView]) -> None:
    """A dotted vertical line where each session continued with --resume starts."""
    for before, v in zip(views, views[1:], strict=False):
        if v.session_id != before.session_id:
            ax.axvline(v.number - 0.5, color="#999999", lw=0.8, ls=":", zorder=1)
            what = f"session {v.session_id}" + (" (confirm)" if v.kind == "confirm" else "")
            ax.annotate(what, (v.number - 0.5, 0.01),
                        xycoords=("data", "axes fraction"), xytext=(3, 0),
                        textcoords="offset points", fontsize=8, color="#777777")  # fmt: skip


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
