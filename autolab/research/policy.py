"""Keep or discard, with the measured noise in mind.

A session first runs the baseline a few times with different seeds; the spread of those
scores is the run-to-run noise. A change is kept outright only when it beats the best by more
than the noise band, max(min_delta, k * spread). A win inside the band may be luck, so it is
re-run with another seed and kept only if the mean of its runs still beats the best.
`greedy` is autoresearch's rule, for comparison: any improvement is kept.
"""

import statistics
from dataclasses import dataclass

DEFAULT_BASELINE_RUNS = 2
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
        self, status: str, reason: str, score: float | None, best: float, noise: Noise | None
    ) -> tuple[str, str]:
        """The verdict on one run that ended `status`: a failure is its own verdict, with its
        reason; a scored run is `decide`d."""
        if status != "ok":
            return status, reason
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
