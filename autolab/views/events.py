"""Events as lines: one module owns how an event reads in a terminal and as JSON.

A step event reads `08:01:12  exp 7  step 118/500 (23%)  loss 1.234  lr 3.0e-4  12.3k tok/s`;
every other event reads `08:01:12  <message>`, coloured by kind (a verdict by its status).
"""

import json
import math
import time
from collections.abc import Callable, Iterator

from rich.text import Text

from autolab.track.ledger import EventRow, Ledger

POLL_SECONDS = 0.5

VERDICT_STYLES = {
    "keep": "green",
    "discard": "dim",
    "crash": "red",
    "timeout": "red",
    "invalid": "red",
    "interrupted": "yellow",
    "pruned": "magenta",
}
ALERT_STYLES = {"new_best": "bold green", "crash_streak": "bold red", "nan": "bold red"}
KIND_STYLES = {
    "created": "blue",
    "started": "blue",
    "step": "",
    "evaluation": "cyan",
    "finished": "",
    "note": "italic",
    "session_started": "bold",
    "session_ended": "bold",
}


def format_lr(lr: float) -> str:
    """3e-4 -> "3.0e-4": scientific notation without the exponent's padding zero."""
    mantissa, exponent = f"{lr:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_rate(tokens_per_sec: float) -> str:
    if tokens_per_sec >= 1e6:
        return f"{tokens_per_sec / 1e6:.2f}M tok/s"
    if tokens_per_sec >= 1e3:
        return f"{tokens_per_sec / 1e3:.1f}k tok/s"
    return f"{tokens_per_sec:.0f} tok/s"


def step_text(event: EventRow) -> str:
    """A step event's metrics; "118/500" only when the data carries a known total."""
    data = event.data
    parts = [f"exp {event.number}"] if event.number is not None else []
    step, total, progress = data.get("step"), data.get("total_steps"), data.get("progress")
    if step is not None:
        counted = f"step {step}/{total}" if total else f"step {step}"
        if progress is not None:
            counted += f" ({100 * progress:.0f}%)"
        parts.append(counted)
    loss = data.get("loss")
    if isinstance(loss, int | float):
        parts.append("loss nan" if math.isnan(loss) else f"loss {loss:.3f}")
    if data.get("lr") is not None:
        parts.append(f"lr {format_lr(data['lr'])}")
    if data.get("tokens_per_sec"):
        parts.append(format_rate(data["tokens_per_sec"]))
    return "  ".join(parts) if len(parts) > 1 else event.message


def event_style(event: EventRow) -> str:
    if event.kind == "verdict":
        return VERDICT_STYLES.get(event.data.get("status", ""), "")
    if event.kind == "alert":
        return ALERT_STYLES.get(event.data.get("alert", ""), "bold yellow")
    if event.kind == "session_ended" and not event.message.startswith("session succeeded"):
        return "bold yellow" if "cancelled" in event.message else "bold red"
    return KIND_STYLES.get(event.kind, "")


def event_line(event: EventRow) -> str:
    """The event as one plain line: local time, two spaces, what happened."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    body = step_text(event) if event.kind == "step" else " ".join(event.message.split())
    return f"{stamp}  {body}"


def event_text(event: EventRow) -> Text:
    """The line as rich Text, styled by kind; the message is never read as markup."""
    return Text(event_line(event), style=event_style(event))


def event_json(event: EventRow) -> str:
    return json.dumps(event.to_dict())


def follow(
    ledger: Ledger,
    after_id: int,
    is_over: Callable[[], bool],
    number: int | None = None,
    session_id: int | None = None,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[EventRow]:
    """New events as they are recorded, until the session ends.

    It ends at a `session_ended` event of `session_id`, or when `is_over()` says so (the
    session has an end row or its process is gone); then it reads once more, after one poll,
    so that an event written just before the end is not lost.
    """
    closing = False
    while True:
        # Read all of the session's events, so that an --experiment filter hides no end.
        ended = False
        for event in ledger.events(after_id=after_id, session_id=session_id):
            after_id = event.id
            ended = ended or event.kind == "session_ended"
            if number is None or event.number == number:
                yield event
        if ended or closing:
            return
        closing = is_over()
        sleep(poll)
