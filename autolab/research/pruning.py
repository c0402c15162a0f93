"""Stop hopeless runs early (`autolab research --prune`): the decision, and nothing else.

The harness measures a watched model's dev loss at 1/4, 1/2 and 3/4 of the budget (and at the
end). The reference curves are the current best's dev-loss points: the kept candidate's run
and its re-check's when it had one, or before any keep the baseline runs' (the loop chooses
them, research.loop). At each of a candidate's dev-loss points before PRUNE_BEFORE of its
budget, at progress p:

    each reference curve, linearly interpolated at p, gives r_i (a curve stands for itself
    up to HOLD beyond its first and last points; farther out there is no decision);
    reference = mean(r_i), spread = stdev(r_i) (0 with one run);
    margin = max(FLOOR * reference, K * spread);
    pruned when the candidate's dev loss > reference + margin (a non-finite one always is).

Why the best and not the baseline runs: a candidate is a change to the best, and the baseline
curve is soon far behind it. Replayed over the researcher benchmark's `search` sessions
(bench/prune_replay.py), the baseline's curve stopped 9 of 73 candidates, one of them a later
keep; the best's stopped 27, none a later keep. Why a relative floor: a kept best ran once or
twice, two runs can agree by luck, and a loss in nats per token scales with the tokenizer. A
recipe whose curve starts slow and ends well (a long warm-up) can be pruned wrongly: that is
why `--prune` is off by default until a benchmark shows it pays.
"""

import math
import statistics
from dataclasses import asdict, dataclass

K = 3.0  # baseline spreads a candidate may be worse by at the same progress
FLOOR = 0.02  # ... and at least this fraction of the reference's dev loss
PRUNE_BEFORE = 0.95  # later points are not judged: the run is as good as finished
HOLD = 0.1  # progress a curve's first/last point stands for beyond itself


@dataclass(frozen=True)
class Curve:
    points: tuple[tuple[float, float], ...]  # (progress, dev loss), progress increasing

    @classmethod
    def from_metrics(cls, rows: list[dict]) -> "Curve":
        """A run's dev-loss points from its metric rows (ledger or metrics.jsonl)."""
        points = sorted(
            (float(r["progress"]), float(r["dev_loss"]))
            for r in rows
            if r.get("dev_loss") is not None and r.get("progress") is not None
        )
        return cls(tuple(points))

    def at(self, progress: float) -> float | None:
        """The dev loss at `progress`, interpolated; None outside the curve (beyond HOLD)."""
        pts = self.points
        if not pts or progress < pts[0][0] - HOLD or progress > pts[-1][0] + HOLD:
            return None
        if progress <= pts[0][0]:
            return pts[0][1]
        for (p0, y0), (p1, y1) in zip(pts, pts[1:], strict=False):
            if progress <= p1:
                return y0 + (y1 - y0) * (progress - p0) / (p1 - p0) if p1 > p0 else y1
        return pts[-1][1]


@dataclass(frozen=True)
class Verdict:
    progress: float
    dev_loss: float
    reference: float
    margin: float
    runs: int  # reference curves the reference came from

    @property
    def prune(self) -> bool:
        return not math.isfinite(self.dev_loss) or self.dev_loss > self.reference + self.margin

    def reason(self) -> str:
        return (
            f"pruned at {100 * self.progress:.0f}% of its budget: dev loss {self.dev_loss:.4f}, "
            f"worse than the best's {self.reference:.4f} at that point by more than the margin "
            f"{self.margin:.4f}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    curves: tuple[Curve, ...]
    k: float = K
    floor: float = FLOOR

    def judge(self, progress: float, dev_loss: float) -> Verdict | None:
        """The verdict on one dev-loss point; None where there is nothing to compare with."""
        if progress >= PRUNE_BEFORE:
            return None
        values = [v for v in (c.at(progress) for c in self.curves) if v is not None]
        if not values:
            return None
        reference = statistics.fmean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        margin = max(self.floor * abs(reference), self.k * spread)
        return Verdict(progress, dev_loss, reference, margin, len(values))


class Watch:
    """Follows one running candidate's metric records; `verdict` is set at the first point
    that says prune (then the run is stopped), else stays None."""

    def __init__(self, reference: Reference):
        self.reference = reference
        self.verdict: Verdict | None = None

    def see(self, record: dict) -> None:
        if self.verdict is not None or record.get("dev_loss") is None:
            return
        verdict = self.reference.judge(float(record.get("progress", 0.0)),
                                       float(record["dev_loss"]))  # fmt: skip
        if verdict is not None and verdict.prune:
            self.verdict = verdict
