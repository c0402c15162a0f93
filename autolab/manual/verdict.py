"""The verdict after a person's `autolab train`: the research loop's own rules (`Policy`), told
against the person's best and the noise band their `--repeat` runs measured.

- One run: `Policy.decide` against the best, with the latest measured band. A win inside the
  band is not a new best yet (the loop would re-check it): the line says to repeat it.
- `--repeat N` (N >= 2): `Policy.decide_recheck` on the N scores (the mean must beat the best),
  and the spread of those scores becomes the noise band from then on.
- Before any `--repeat`, the band is unknown: `Policy.band(None)` (min_delta) decides, and the
  line says how to measure the band.
"""

from dataclasses import dataclass

from autolab.research.policy import Noise, Policy
from autolab.track.ledger import NoiseRow

REPEAT_HINT = "`autolab train --repeat 3` measures it"


@dataclass(frozen=True)
class Verdict:
    status: str  # keep | discard: what the ledger records
    reason: str  # the ledger's reason
    line: str  # what the person reads


def judge(
    scores: list[float],
    best: tuple[int, float] | None,
    noise: NoiseRow | None,
    policy: Policy | None = None,
) -> Verdict:
    """`scores`: this train.py's sealed scores (one, or N from --repeat); `best`: the person's
    best (number, score) before it; `noise`: the latest measured band's runs, if any."""
    policy = policy or Policy()
    if len(scores) > 1:
        return _judge_repeat(scores, best, policy)
    score = scores[0]
    measured = None if noise is None else Noise(noise.baseline_bpb, noise.spread, noise.runs)
    band = policy.band(measured)
    band_text = (
        f"the noise band {band:.4f}"
        if measured
        else f"min_delta {band:.4f} (the noise band is unknown: {REPEAT_HINT})"
    )
    if best is None:
        known = f"noise band {band:.4f}" if measured else f"noise band unknown: {REPEAT_HINT}"
        line = f"your first recorded run: {score:.4f} is the score to beat; {known}"
        return Verdict("keep", "first run: the score to beat", line)
    number, best_score = best
    status, _ = policy.decide(score, best_score, measured)
    head = f"vs your best (#{number}, {best_score:.4f}): {_signed(score - best_score)}"
    if status == "keep":
        reason = f"beyond {band_text}"
        return Verdict("keep", f"new best, {reason}", f"{head}, {reason} → new best")
    if status == "recheck":
        reason = f"inside {band_text}"
        return Verdict(
            "discard",
            f"better but {reason}: not the best until repeated",
            f"{head}, {reason}: `autolab train --repeat 2` to be sure",
        )
    return Verdict(
        "discard",
        "no improvement",
        f"{head} → no better; `autolab checkout best` goes back to #{number}",
    )


def _judge_repeat(scores: list[float], best: tuple[int, float] | None, policy: Policy) -> Verdict:
    noise = Noise.measure(scores)
    band = policy.band(noise)
    measured = f"mean of {len(scores)} runs {noise.baseline_bpb:.4f} ± {noise.spread:.4f}"
    tail = f"; noise band now {band:.4f}"
    if best is None:
        return Verdict(
            "keep",
            f"first run, {measured}",
            f"your first recorded train.py: {measured} is the score to beat{tail}",
        )
    number, best_score = best
    status, reason = policy.decide_recheck(scores, best_score)
    head = f"{measured} vs your best (#{number}, {best_score:.4f}): "
    head += _signed(noise.baseline_bpb - best_score)
    if status == "keep":
        return Verdict("keep", reason, f"{head} → new best{tail}")
    return Verdict("discard", reason, f"{head} → no better{tail}")


def _signed(value: float) -> str:
    """−0.0142 (better) or +0.0100, with a real minus sign as the issue's example reads."""
    return f"{value:+.4f}".replace("-", "−")
