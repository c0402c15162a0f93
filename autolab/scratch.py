"""Scratch folders in the system's temporary directory, and the sweep of those a killed run left.

The zygotes, the sandbox's staging area, the evaluator and the sampler each work in a folder of
their own, removed when they close. A runner that is killed (`kill -9`, the OOM killer, a lost
terminal) cannot remove them, and a sandbox's staging area may hold a whole run's output. So
each folder names the process that made it, and making a new one removes those whose maker is no
longer running. A folder without that name (another tool's, or one being made this instant) is
left alone.
"""

import os
import shutil
import tempfile
from pathlib import Path

from autolab.processes import process_alive

PREFIXES = ("autolab-zygote-", "autolab-sandbox-", "autolab-eval-", "autolab-sample-")
OWNER_FILE = ".autolab-owner"  # the pid of the process that made the folder


def scratch_dir(prefix: str) -> Path:
    """A new folder `prefix`XXXXXXXX holding only its owner's pid; abandoned ones go first."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown scratch prefix {prefix!r}")
    sweep_abandoned()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    return path


def sweep_abandoned(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders under `root` (default: the temporary directory) whose maker
    has ended; returns them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith(PREFIXES) or path.is_symlink():
            continue
        try:
            owner = int((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not process_alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
