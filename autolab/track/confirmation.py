"""The confirmed gain: does the branch's best still beat the reference when both are run again?

A session's in-session Δ is the best of many tries, each measured once or twice: the winner's
curse makes it look better than it is (autoresearch's best-known run claimed 0.9697 and re-tested
at 0.9771). `autolab confirm` (and `autolab research`, at its end) re-runs the reference recipe
(the commit the baseline runs measured) and the best recipe K times each with fresh seeds,
interleaved, as `confirm` experiments. From their sealed scores:

- **delta**: mean(best) − mean(reference), the Δ convention: negative is better;
- **low, high**: its 95% interval, Welch's t interval (unequal variances; scipy computes it);
  None when a side has fewer than two scores or neither side varies;
- **excludes_zero**: the interval lies wholly on one side of zero.

Which runs count: the confirm runs of the sessions that re-ran the current best's commit. Runs
that re-ran an earlier best (the branch was continued and improved since) do not, and neither do
the reference runs made alongside them: each confirmation compares runs made side by side.
"""

import math
import statistics
from dataclasses import dataclass

from autolab.track.ledger import ExperimentView

LEVEL = 0.95
DEFAULT_K = 3  # runs of each recipe: `autolab confirm --k`, `autolab research --confirm`


@dataclass(frozen=True)
class Confirmation:
    best_number: int  # the experiment whose recipe was re-run
    session_ids: list[int]  # the sessions whose confirm runs count
    reference_scores: list[float]  # the sealed val_bpb of each scored re-run, in run order
    best_scores: list[float]
    unscored: int  # confirm runs that ended without a score (crash, timeout, interrupted...)
    delta: float | None  # mean(best) - mean(reference): negative is better
    low: float | None  # the 95% Welch t interval of delta
    high: float | None
    excludes_zero: bool
    session_delta: float | None  # the in-session Δ it re-measures (best score - reference)

    @property
    def runs(self) -> int:
        return len(self.reference_scores) + len(self.best_scores) + self.unscored


def sides(views: list[ExperimentView], best: ExperimentView | None) -> dict[int, str]:
    """Which recipe each confirm run re-ran: "reference", "best" or "earlier best", by number."""
    reference = {v.commit_sha for v in views if v.kind == "baseline" and v.commit_sha}
    out = {}
    for v in views:
        if v.kind != "confirm":
            continue
        if v.commit_sha in reference:
            out[v.number] = "reference"
        elif best is not None and v.commit_sha == best.commit_sha:
            out[v.number] = "best"
        else:
            out[v.number] = "earlier best"
    return out


def confirmation_of(
    views: list[ExperimentView], best: ExperimentView | None, session_delta: float | None
) -> Confirmation | None:
    """The confirmation of `best` from the branch's `views`; None when nothing was kept or its
    recipe was never re-run."""
    if best is None:
        return None
    views = sorted(views, key=lambda v: v.number)
    side = sides(views, best)
    sessions = sorted({v.session_id for v in views if side.get(v.number) == "best"})
    runs = [v for v in views if v.number in side and v.session_id in sessions]
    if not runs:
        return None

    def scores(name: str) -> list[float]:
        return [v.val_bpb for v in runs if side[v.number] == name and _scored(v)]

    reference, best_scores = scores("reference"), scores("best")
    delta = low = high = None
    if reference and best_scores:
        delta = statistics.fmean(best_scores) - statistics.fmean(reference)
        low, high = welch_interval(best_scores, reference)
    return Confirmation(
        best_number=best.number,
        session_ids=sessions,
        reference_scores=reference,
        best_scores=best_scores,
        unscored=sum(1 for v in runs if not _scored(v)),
        delta=delta,
        low=low,
        high=high,
        excludes_zero=low is not None and (high < 0 or low > 0),
        session_delta=session_delta,
    )


def welch_interval(a: list[float], b: list[float]) -> tuple[float | None, float | None]:
    """The LEVEL interval of mean(a) - mean(b) without assuming equal variances; (None, None)
    when it is undefined (a side with one score, or no spread on either side)."""
    if len(a) < 2 or len(b) < 2:
        return None, None
    from scipy import stats

    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(LEVEL)
    low, high = float(ci.low), float(ci.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, None
    return low, high


def _scored(v: ExperimentView) -> bool:
    return v.status == "keep" and v.val_bpb is not None and math.isfinite(v.val_bpb)


def confirmation_text(c: Confirmation | None) -> str:
    """ "confirmed Δ -0.0123 (95% CI -0.0200 to -0.0046, excludes zero; 3+3 runs) vs -0.0150 in
    session": the line every view prints."""
    if c is None:
        return "not confirmed yet: `autolab confirm` re-runs the reference and the best"
    n = f"{len(c.best_scores)}+{len(c.reference_scores)} runs"
    if c.unscored:
        n += f", {c.unscored} without a score"
    if c.delta is None:
        return f"confirmation of exp {c.best_number} has no score on one side ({n})"
    text = f"confirmed Δ {c.delta:+.4f}"
    if c.low is None:
        text += f" (no interval: too few runs; {n})"
    else:
        verdict = "includes zero: not confirmed"
        if c.excludes_zero:
            verdict = "excludes zero: " + ("the gain holds" if c.high < 0 else "the best is worse")
        text += f" (95% CI {c.low:+.4f} to {c.high:+.4f}, {verdict}; {n})"
    if c.session_delta is not None:
        text += f", in session {c.session_delta:+.4f}"
    return text
