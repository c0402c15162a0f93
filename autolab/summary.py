"""The summary block a run prints at the end, and its parser. The one owner of this format.

A block is a line `---` followed by `key: value` lines, values aligned after the colon. The
autoresearch-compatible keys come first in this order; anything else follows. Anything can grep
it (`grep '^val_bpb:' run.log`), and `parse_summary` reads it back from a whole log.
"""

import math

# Keys in the order they are printed, with how each value is formatted.
FIELDS: dict[str, str] = {
    "val_bpb": "{:.6f}",
    "training_seconds": "{:.1f}",
    "total_seconds": "{:.1f}",
    "peak_memory_mb": "{:.1f}",
    "tokens_per_sec": "{:.0f}",
    "mfu_percent": "{:.2f}",
    "num_steps": "{:d}",
    "num_params_M": "millions",  # _millions: three significant figures
    "device": "{}",
    "startup_seconds": "{:.1f}",
    "handover_seconds": "{:.1f}",
    "isolation": "{}",
}
KEY_WIDTH = 17  # "training_seconds:" is the longest fixed key


def format_value(key: str, value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    fmt = FIELDS.get(key)
    if fmt == "millions":
        return _millions(value)
    if fmt is None:
        return f"{value:.6f}" if isinstance(value, float) else str(value)
    return fmt.format(value)


def _millions(value: float) -> str:
    """A count in millions to three significant figures, as a plain decimal that parses back
    to a float: a 30,212-parameter MLP is 0.0302 (one decimal said 0.0), a 50.3M GPT 50.3."""
    if value <= 0:
        return f"{value:.1f}"
    decimals = max(1, 2 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}"


def format_summary(values: dict) -> str:
    """`values` -> the block, known keys first in FIELDS order; None values are left out."""
    keys = [k for k in FIELDS if values.get(k) is not None]
    keys += [k for k in values if k not in FIELDS and values[k] is not None]
    lines = ["---"]
    for key in keys:
        lines.append(f"{key + ':':<{KEY_WIDTH}} {format_value(key, values[key])}")
    return "\n".join(lines)


def _parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_summary(text: str) -> dict:
    """The last summary block in `text` (a whole log is fine) as a dict; {} if there is none."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    for start in reversed(starts):
        values = {}
        for line in lines[start + 1 :]:
            key, sep, value = line.partition(":")
            if not sep or not key or " " in key.strip() or not value.strip():
                break
            values[key.strip()] = _parse_value(value.strip())
        if values:
            return values
    return {}
