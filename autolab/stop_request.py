"""A request to end a research session, made from outside it (`autolab stop`, the dashboard).

The request is the file .autolab/stop; its first word says when the session ends:
- "after": once the running experiment has finished and been recorded (a `touch` of the file,
  with no word in it, asks for the same);
- "now": the running experiment is interrupted (recorded `interrupted`; `autolab research
  --resume` runs it again first).
The research loop reads it between experiments and while one runs; it removes the file when the
session starts and when it ends.
"""

from pathlib import Path

from autolab.processes import process_alive
from autolab.track.ledger import Ledger, SessionView, ledger_path
from autolab.workspace import STOP_FILE

AFTER, NOW = "after", "now"


def request_stop(state_dir: Path, when: str, source: str) -> Path:
    if when not in (AFTER, NOW):
        raise ValueError(f"unknown stop request {when!r}; expected {AFTER} or {NOW}")
    state_dir.mkdir(exist_ok=True)
    path = state_dir / STOP_FILE
    # A request for "now" is never turned back into "after" by a later, milder one.
    if when == AFTER and requested(state_dir) == NOW:
        return path
    path.write_text(f"{when}\nrequested by {source}\n")
    return path


def requested(state_dir: Path) -> str | None:
    """None, AFTER or NOW."""
    try:
        text = (state_dir / STOP_FILE).read_text()
    except FileNotFoundError:
        return None
    return NOW if text.split()[:1] == [NOW] else AFTER


def session_pid(ledger: Ledger, session: SessionView) -> int | None:
    """The process running the session: a resumed session records its new one when it starts."""
    started = [e for e in ledger.events(session_id=session.id) if e.kind == "session_started"]
    pids = [e.data["pid"] for e in started if e.data.get("pid")]
    return int(pids[-1]) if pids else session.config.get("pid")


def running_session(workspace_root: Path) -> SessionView | None:
    """The workspace's latest session while its process is alive; None when none runs."""
    if not ledger_path(workspace_root).is_file():
        return None
    with Ledger.for_workspace(workspace_root) as ledger:
        session = ledger.latest_session()
        if session is None or session.status is not None:
            return None
        return session if process_alive(session_pid(ledger, session)) else None
