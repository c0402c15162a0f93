"""Progress for logs and pipes: with no terminal to redraw a bar in, a training run prints a
step line every few seconds, in the `events` format (see autolab.views.events)."""

import time
from collections.abc import Callable

from autolab.track.ledger import EventRow
from autolab.views.events import event_line

DEFAULT_INTERVAL = 10.0  # seconds between lines
STEP_KEYS = ("step", "progress", "loss", "lr", "tokens_per_sec", "memory_mb")


class ProgressLines:
    """Called with each metrics record; prints the first, then one every `interval` seconds,
    and the last (progress 1.0)."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        write: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.time,
    ):
        self.interval = interval
        self.write = write
        self.clock = clock
        self.last: float | None = None

    def __call__(self, record: dict, number: int | None = None) -> None:
        now = self.clock()
        done = record.get("progress", 0.0) >= 1.0
        if self.last is not None and now - self.last < self.interval and not done:
            return
        self.last = now
        data = {k: record[k] for k in STEP_KEYS if record.get(k) is not None}
        event = EventRow(0, now, None, number, "step", f"step {record.get('step')}", data)
        self.write(event_line(event))


def check_interval(seconds: float) -> float:
    from autolab.errors import UsageError

    if seconds < 0:
        raise UsageError("--progress-interval must be 0 (every step) or more seconds")
    return seconds
