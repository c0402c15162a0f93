"""Whether a process is still running, by its id: for processes that are not our children (the
session a dashboard watches, a child forked by the zygote), which `wait` cannot tell us about."""

import os
from pathlib import Path


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id is running (a zombie, killed but not reaped, is not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name, which may hold spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) succeeding is all we know
