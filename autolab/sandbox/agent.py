"""The `command` researcher's agent in a sandbox of its own.

A coding agent (claude, codex, aider...) needs far more of the machine than an experiment: its
own binary wherever it is installed, its configuration and credentials in the home directory,
and the network for its API. So its view starts from the whole system, read-only, and takes
away the referee: the workspace's `.git` and `.autolab` (ledger, runs, the agent's earlier
output), the autolab home (public shards, the sealed store) and any path the caller adds. It
reads its home directory (its settings and credentials) and /tmp but cannot write there; its
scratch space is `$TMPDIR`, a folder the runner empties after every call (bubblewrap 0.8,
Debian 12's, has no overlays to offer a writable home that leaves no trace: an agent that must
write its settings needs pointing at $TMPDIR, e.g. through its config-directory variable).
It has its own user, PID and IPC namespaces (no view of the runner's processes) and keeps the
network.

The workspace is shown read-only except `train.py` and the description file, the only two
things it may change. Git is out of its reach, so it describes its change in the description
file instead of a commit message.
"""

import shutil
from pathlib import Path

from autolab.sandbox.layout import SANDBOX_UID


def agent_command(
    command: str,
    workspace: Path,
    description: Path,
    prompt: Path,
    scratch: Path,
    hidden: list[Path],
) -> list[str]:
    """bwrap's command line running the shell `command` in `workspace` as described above.

    `description` (a file the runner reads afterwards) appears at .autolab/description.txt,
    `prompt` at .autolab/agent/prompt.md and `scratch` (writable) at .autolab/agent/tmp."""
    workspace = workspace.resolve()
    state = workspace / ".autolab"
    args = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
    ]  # fmt: skip
    for path in sorted({p.resolve() for p in hidden if p.exists()} | {workspace / ".git"}):
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--tmpfs", str(state), "--bind", str(description), str(state / "description.txt")]
    args += ["--ro-bind", str(prompt), str(state / "agent" / "prompt.md")]
    args += ["--bind", str(scratch), str(state / "agent" / "tmp")]
    args += ["--setenv", "TMPDIR", str(state / "agent" / "tmp")]
    args += ["--bind", str(workspace / "train.py"), str(workspace / "train.py")]
    args += ["--chdir", str(workspace), "--", "/bin/sh", "-c", command]
    return args
