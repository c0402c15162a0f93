"""Keep or discard, with the measured noise in mind.

A session first runs the baseline a few times with different seeds; the spread of those
scores is the run-to-run noise. A change is kept outright only when it beats the best by more
than the noise band, max(min_delta, k * spread). A win inside the band may be luck, so it is
re-run with another seed and kept only if the mean of its runs still beats the best.
`greedy` is autoresearch's rule, for comparison: any improvement is kept.

Two or three runs give a spread that swings by luck (0.002 to 0.015 across the researcher
benchmark's sessions), so the spread is pooled with earlier sessions that ran the same baseline
commit with the same budget on the same hardware fingerprint (`pooled_spread`); with no such
history a session runs a third baseline run. Scores are compared only on one fingerprint: a
candidate measured on other hardware than the reference is discarded with that reason, never
compared (`judge`).
"""

import math
import statistics
from dataclasses import dataclass

DEFAULT_BASELINE_RUNS = 2  # with earlier sessions' runs to pool the spread with
BASELINE_RUNS_ALONE = 3  # with none: two runs alone give one degree of freedom
INTERVAL_LEVEL = 0.95
DEFAULT_K = 2.0
DEFAULT_MIN_DELTA = 0.002  # bits per byte; below this nobody should care


@dataclass(frozen=True)
class Noise:
    baseline_bpb: float  # mean of the baseline runs
    spread: float  # sample standard deviation of the baseline runs
    runs: int

    @classmethod
    def measure(cls, scores: list[float]) -> "Noise":
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        return cls(statistics.fmean(scores), spread, len(scores))


def pooled_spread(groups: list[tuple[float, int]]) -> tuple[float, int]:
    """(spread, degrees of freedom) pooled over groups of (sample standard deviation, runs):
    sqrt(sum((n - 1) * s^2) / sum(n - 1)), each group weighted by its degrees of freedom. A
    group of one run has none and counts for nothing."""
    dof = sum(n - 1 for _, n in groups if n > 1)
    if dof == 0:
        return 0.0, 0
    return math.sqrt(sum((n - 1) * s * s for s, n in groups if n > 1) / dof), dof


def spread_interval(spread: float, dof: int, level: float = INTERVAL_LEVEL):
    """The `level` confidence interval of a standard deviation estimated with `dof` degrees of
    freedom: dof * s^2 / sigma^2 is chi-square with dof degrees of freedom. None without any."""
    if dof < 1:
        return None
    from scipy.stats import chi2

    tail = (1 - level) / 2
    return (math.sqrt(dof * spread**2 / chi2.ppf(1 - tail, dof)),
            math.sqrt(dof * spread**2 / chi2.ppf(tail, dof)))  # fmt: skip


@dataclass(frozen=True)
class Policy:
    k: float = DEFAULT_K
    min_delta: float = DEFAULT_MIN_DELTA
    greedy: bool = False

    def band(self, noise: Noise | None) -> float:
        """How much better than the best a single run must be to be kept outright."""
        if self.greedy:
            return 0.0
        spread = noise.spread if noise else 0.0
        return max(self.min_delta, self.k * spread)

    def judge(
        self, status: str, reason: str, score: float | None, best: float, noise: Noise | None,
        hardware: dict | None = None, reference_hardware: dict | None = None,
    ) -> tuple[str, str]:  # fmt: skip
        """The verdict on one run that ended `status`: a failure is its own verdict, with its
        reason; a scored run is `decide`d, but only against a reference measured on its own
        hardware fingerprint: one measured elsewhere is discarded, saying so (both known)."""
        if status != "ok":
            return status, reason
        if hardware and reference_hardware and hardware != reference_hardware:
            from autolab.hardware import label

            elsewhere = f"measured on other hardware ({label(hardware)}) than the reference "
            return "discard", f"{elsewhere}({label(reference_hardware)}): not compared"
        return self.decide(score, best, noise)

    def decide(self, score: float, best: float, noise: Noise | None) -> tuple[str, str]:
        """('keep' | 'discard' | 'recheck', reason) for one run's sealed score."""
        gain = best - score
        if self.greedy:
            if gain > 0:
                return "keep", f"improved by {gain:.4f}"
            return "discard", f"no improvement ({-gain:+.4f})"
        band = self.band(noise)
        if gain > band:
            return "keep", f"improved by {gain:.4f}, beyond the noise band {band:.4f}"
        if gain > 0:
            return "recheck", f"improved by {gain:.4f}, inside the noise band {band:.4f}"
        return "discard", f"no improvement ({-gain:+.4f})"

    def decide_recheck(self, scores: list[float], best: float) -> tuple[str, str]:
        """After a re-run: keep only if the mean of all runs of the change still wins."""
        mean = statistics.fmean(scores)
        if mean < best:
            return "keep", f"mean of {len(scores)} runs {mean:.4f} still beats {best:.4f}"
        return "discard", f"mean of {len(scores)} runs {mean:.4f} does not beat {best:.4f}"
