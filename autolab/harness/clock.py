"""The training clock: how much of the budget a run has used.

The first steps of a run pay for compilation and warm-up, so they may be left out of the
training time, but only the first `MAX_EXCLUDED_STEPS` steps and never more than
`MAX_EXCLUDED_FRACTION` of the budget: whatever warm-up costs beyond that counts.
"""

import time

MAX_EXCLUDED_STEPS = 10
MAX_EXCLUDED_FRACTION = 0.2


class TrainingClock:
    def __init__(self, budget_seconds: float, excluded_steps: int = 0):
        if not 0 <= excluded_steps <= MAX_EXCLUDED_STEPS:
            raise ValueError(f"at most {MAX_EXCLUDED_STEPS} warm-up steps may be left out")
        self.budget = budget_seconds
        self.excluded_steps = excluded_steps
        self.steps = 0
        self.excluded_seconds = 0.0
        self.training_seconds = 0.0
        self._last = time.perf_counter()

    def tick(self) -> None:
        """Call once after each optimizer step (after the loss is synced)."""
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        self.steps += 1
        allowance = MAX_EXCLUDED_FRACTION * self.budget - self.excluded_seconds
        if self.steps <= self.excluded_steps and allowance > 0:
            left_out = min(elapsed, allowance)
            self.excluded_seconds += left_out
            elapsed -= left_out
        self.training_seconds += elapsed

    def exclude(self, seconds: float) -> None:
        """`seconds` since the last tick were not training (the harness measuring dev loss):
        the next tick leaves them out."""
        self._last += seconds

    @property
    def progress(self) -> float:
        """Fraction of the budget used, in [0, 1]; drives learning-rate schedules."""
        return min(1.0, self.training_seconds / self.budget) if self.budget > 0 else 1.0

    @property
    def time_up(self) -> bool:
        return self.training_seconds >= self.budget

    @property
    def seconds_left(self) -> float:
        return max(0.0, self.budget - self.training_seconds)
