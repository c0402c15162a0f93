"""Where autolab keeps things on disk."""

import os
from pathlib import Path


def autolab_home(override: str | os.PathLike | None = None) -> Path:
    """The data directory: a flag beats $AUTOLAB_HOME beats ~/.cache/autolab."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("AUTOLAB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "autolab"
