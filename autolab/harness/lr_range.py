"""The learning-rate range test (Smith 2015; fastai's lr_find), on the harness's side: its own
kind of run, `LRRangeRun`, which `Run.from_env()` gives when `autolab lr-find` asks for one.

In this mode the run multiplies its learning rates by `scale`, which rises exponentially from
MIN_SCALE to MAX_SCALE over `steps` optimizer steps; the loss at every step is recorded, and the
run ends at the last step or once the loss has clearly diverged. A recipe takes part by
multiplying its learning rates by `run.lr_scale` (always 1.0 in a normal run).
"""

import math
import os
from dataclasses import dataclass

import torch

from autolab.harness.run import Run
from autolab.harness.settings import RunSettings

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


class LRRangeRun(Run):
    """A run that sweeps the learning-rate multiplier instead of training for the budget: every
    step is logged with its `lr_scale`, divergence is its expected end, and it hands nothing
    over (no model, no summary, no result.json): it is not a training run."""

    def __init__(self, settings: RunSettings, excluded_steps: int | None = None):
        super().__init__(settings, excluded_steps)
        self.test = LRRangeTest(settings.lr_find_steps)

    @property
    def progress(self) -> float:
        return PROGRESS

    @property
    def time_up(self) -> bool:
        return self.test.done(self.clock.steps)

    @property
    def lr_scale(self) -> float:
        return self.test.scale(self.clock.steps)

    def step(self, loss: torch.Tensor | float, lr: float | None = None, **extra) -> float:
        loss_value = self._tick(loss)
        self.test.observe(loss_value)  # no NaN guard: divergence is what the sweep looks for
        self._log_step(loss_value, lr, {**extra, "lr_scale": self.test.scale(
            self.clock.steps - 1)})  # fmt: skip
        return loss_value

    def finish(self, model, context_len: int, flops_per_token: float | None = None) -> None:
        self._metrics.close()
        print(f"lr range test: {self.clock.steps} steps", flush=True)
        os._exit(0)
