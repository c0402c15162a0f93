"""Durations as people write them on the command line: 30s, 5m, 1.5h, or plain seconds."""

import re

from autolab.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str | float | int, what: str = "budget") -> float:
    """Seconds in `text`; a UsageError that shows the accepted forms otherwise."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
        if not match:
            raise UsageError(f"cannot read {what} {text!r}: write it like 30s, 5m or 1.5h")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise UsageError(f"{what} must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 360 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
