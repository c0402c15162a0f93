"""Where every attack starts: a workspace whose train.py is the honest bigram, committed."""

import subprocess
import sys
from pathlib import Path

HONEST = Path(__file__).with_name("_honest.py")


def make_workspace(workspace: Path, env: dict[str, str], budget: str) -> None:
    """`autolab init`, then `_honest.py` (without its markers) as train.py, committed."""
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace), "--budget", budget],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    lines = HONEST.read_text().splitlines(keepends=True)
    (workspace / "train.py").write_text("".join(l for l in lines if not l.startswith("# --- ")))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", "the bigram"], cwd=workspace, check=True)
