"""Whether this machine can sandbox an experiment, and which isolation a run gets.

`sandbox`: bubblewrap with user, PID, network, IPC and mount namespaces (autolab.sandbox).
`process`: the experiment is its own process group under the same user as the runner; the
integrity checks still run, but they catch an experiment that cheats, not a hostile program.
"""

import functools
import shutil
import subprocess
import sys
from collections.abc import Callable

from autolab.errors import UsageError

ISOLATIONS = ("sandbox", "process")
PROBE_TIMEOUT_S = 20


@functools.cache
def sandbox_unavailable() -> str | None:
    """None when bubblewrap can create the sandbox's namespaces here; else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [
        bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
        "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true",
    ]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap could not be started ({err})"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot create user namespaces here ({said})"
    return None


def choose_isolation(requested: str | None, warn: Callable[[str], None]) -> str:
    """The isolation a run gets: the sandbox unless `process` is asked for or it is missing.

    Asking for `sandbox` where it cannot be had is an error; not asking falls back to
    `process` with one warning, and the runs record which isolation they had."""
    if requested not in (None, *ISOLATIONS):
        raise UsageError(f"unknown isolation {requested!r}: use {' or '.join(ISOLATIONS)}")
    if requested == "process":
        return "process"
    reason = sandbox_unavailable()
    if reason and requested == "sandbox":
        raise UsageError(
            f"--isolation sandbox is not available: {reason}; "
            "install it, or run with --isolation process"
        )
    if reason:
        warn(
            f"no sandbox: {reason}; experiments run with process isolation only, which an "
            "experiment written to cheat can get around (docs/security.md)"
        )
        return "process"
    return "sandbox"


def add_isolation_argument(parser) -> None:
    """`--isolation`, shared by every command that runs train.py."""
    parser.add_argument(
        "--isolation",
        choices=ISOLATIONS,
        help="how train.py is kept from the referee: sandbox (bubblewrap namespaces) or process; "
        "default: sandbox where available, else process with a warning",
    )


def isolation_from_args(args) -> str:
    """The isolation for this command, warning once on stderr when the sandbox is missing
    (the choice is written back to `args`, so asking again does not warn again)."""
    args.isolation = choose_isolation(args.isolation, warn_on_stderr)
    return args.isolation


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
