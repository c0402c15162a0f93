"""The learning-rate range test (Smith 2015; fastai's lr_find), on the harness's side.

In this mode the run multiplies its learning rates by `scale`, which rises exponentially from
MIN_SCALE to MAX_SCALE over `steps` optimizer steps; the loss at every step is recorded, and the
run ends at the last step or once the loss has clearly diverged. A recipe takes part by
multiplying its learning rates by `run.lr_scale` (always 1.0 in a normal run).
"""

import math
from dataclasses import dataclass

MIN_SCALE = 1e-3
MAX_SCALE = 1e2
DIVERGED_FACTOR = 4.0  # loss this many times its lowest so far: the rest of the sweep is noise
# What `run.progress` reads during the test: inside the constant part of the usual schedules
# (after a short warm-up, before the warm-down), so the schedule itself is flat.
PROGRESS = 0.25


@dataclass
class LRRangeTest:
    steps: int
    lowest_loss: float = math.inf
    diverged: bool = False

    def scale(self, step: int) -> float:
        fraction = min(1.0, step / max(1, self.steps - 1))
        return MIN_SCALE * (MAX_SCALE / MIN_SCALE) ** fraction

    def observe(self, loss: float) -> None:
        if not math.isfinite(loss) or loss > DIVERGED_FACTOR * self.lowest_loss:
            self.diverged = True
        elif loss < self.lowest_loss:
            self.lowest_loss = loss

    def done(self, steps_taken: int) -> bool:
        return self.diverged or steps_taken >= self.steps
