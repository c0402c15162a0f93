"""`--notify-cmd CMD`: run a shell command when a research session has news.

`CommandNotifier(cmd)` is a listener for ResearchSession.listeners. It runs CMD through the
shell when the session ends, when an experiment sets a new best (alert new_best) and when
failures pile up (alert crash_streak), with one JSON object on stdin:

    {"event": "session_ended" | "new_best" | "crash_streak", "message": "...",
     "workspace": "/path", "session": 1, "experiment": 7 | null, "val_bpb": 1.23 | null,
     "best_val_bpb": 1.23 | null, "best_experiment": 7 | null, "baseline_val_bpb": 1.25 | null,
     "delta": -0.02 | null, "counts": {"kept": 1, "discarded": 3, ...},
     "confirmed": {"delta": -0.015, "low": -0.02, "high": -0.01, "excludes_zero": true,
                   ...} | null,
     "time": "2026-11-23T08:01:12+01:00"}

best_val_bpb is the best kept candidate's score, or the reference (baseline_val_bpb, the mean
of the baseline runs) while nothing was kept (best_experiment null); delta is best − reference,
negative is better. confirmed is the best re-run beside the reference after the search
(`track.confirmation`: mean best − mean reference with its 95% interval), null until then; a
confirmation is a session of its own, so its end sends one more session_ended notice.

The same event name and message are in $AUTOLAB_EVENT and $AUTOLAB_MESSAGE, for one-liners
such as `notify-send autolab "$AUTOLAB_MESSAGE"`. The command runs in the workspace, in its own
process group, and has NOTIFY_TIMEOUT seconds; a non-zero exit or a timeout raises
NotifyError, which the loop records as a note and otherwise ignores.
"""

import json
import os
import signal
import subprocess
from dataclasses import asdict
from datetime import datetime

from autolab.track.ledger import EventRow

NOTIFY_TIMEOUT = 30.0
ALERTS = ("new_best", "crash_streak")
STDERR_TAIL = 300  # characters of the command's stderr quoted in a NotifyError


class NotifyError(RuntimeError):
    """The notify command failed or ran out of time."""


def notice_name(event: EventRow) -> str | None:
    """The notice an event gives ("session_ended", "new_best", "crash_streak"), or None."""
    if event.kind == "session_ended":
        return "session_ended"
    if event.kind == "alert" and event.data.get("alert") in ALERTS:
        return event.data["alert"]
    return None


def payload(event: EventRow, session) -> dict:
    """The JSON object the command reads; `session` is the ResearchSession (or alike, with a
    `standings()`): the numbers are the branch's standings, as every view tells them."""
    standings = session.standings()
    ref = standings.reference
    return {
        "event": notice_name(event),
        "message": event.message,
        "workspace": str(session.workspace.root),
        "session": event.session_id if event.session_id is not None else session.session_id,
        "experiment": event.number,
        "val_bpb": event.data.get("val_bpb"),
        "best_val_bpb": standings.best_score,
        "best_experiment": standings.best_number,
        "baseline_val_bpb": ref.bpb if ref else None,
        "delta": standings.delta,
        "counts": {**asdict(standings.counts), "failed": standings.counts.failed},
        "confirmed": asdict(standings.confirmed) if standings.confirmed else None,
        "time": datetime.fromtimestamp(event.time).astimezone().isoformat(timespec="seconds"),
    }


class CommandNotifier:
    """A session listener that runs `cmd` on the events worth a notice; see the module doc."""

    def __init__(self, cmd: str, timeout: float = NOTIFY_TIMEOUT):
        self.cmd = cmd
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"CommandNotifier({self.cmd!r})"

    def __call__(self, event: EventRow, session) -> None:
        if notice_name(event) is None:
            return
        self.send(payload(event, session), cwd=session.workspace.root)

    def send(self, message: dict, cwd=None) -> None:
        env = {
            **os.environ,
            "AUTOLAB_EVENT": str(message["event"]),
            "AUTOLAB_MESSAGE": str(message["message"]),
        }
        proc = subprocess.Popen(
            self.cmd,
            shell=True,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a timeout kills the shell and whatever it started
        )
        try:
            _, stderr = proc.communicate(json.dumps(message) + "\n", timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise NotifyError(
                f"notify command ran over {self.timeout:g}s and was killed: {self.cmd}"
            ) from None
        if proc.returncode != 0:
            tail = (stderr or "").strip()[-STDERR_TAIL:]
            raise NotifyError(
                f"notify command exited with {proc.returncode}: {self.cmd}"
                + (f" ({tail})" if tail else "")
            )
