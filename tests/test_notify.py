"""CommandNotifier with real shell commands: payloads on stdin, failures, the time limit."""

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autolab.notify import CommandNotifier, NotifyError
from autolab.research.loop import ResearchSession
from autolab.track.ledger import EventRow, Ledger


def appender(path: Path) -> str:
    """A command that appends its stdin (one JSON line) to `path`."""
    code = f"import sys; open({str(path)!r}, 'a').write(sys.stdin.read())"
    return f'{sys.executable} -c "{code}"'


def fake_session(root: Path, best=1.5, baseline=1.6):
    noise = SimpleNamespace(baseline_bpb=baseline, spread=0.01) if baseline else None
    return SimpleNamespace(
        workspace=SimpleNamespace(root=root), session_id=3, best_bpb=best, noise=noise
    )


def event(kind, message, number=None, data=None):
    return EventRow(1, 1_700_000_000.0, 3, number, kind, message, data or {})


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_payloads_of_the_three_notices(tmp_path):
    out = tmp_path / "notices.jsonl"
    notify = CommandNotifier(appender(out))
    session = fake_session(tmp_path)
    notify(event("alert", "new best 1.5000 (was 1.6000)", 7,
                 {"alert": "new_best", "val_bpb": 1.5}), session)  # fmt: skip
    notify(event("alert", "3 failed experiments in a row", 9, {"alert": "crash_streak"}), session)
    notify(event("session_ended", "session succeeded"), session)
    first, streak, ended = read(out)
    assert first == {
        "event": "new_best",
        "message": "new best 1.5000 (was 1.6000)",
        "workspace": str(tmp_path),
        "session": 3,
        "experiment": 7,
        "val_bpb": 1.5,
        "best_val_bpb": 1.5,
        "baseline_val_bpb": 1.6,
        "time": first["time"],
    }
    assert first["time"].startswith(time.strftime("%Y-%m-%dT", time.localtime(1_700_000_000)))
    assert (streak["event"], streak["experiment"], streak["val_bpb"]) == ("crash_streak", 9, None)
    assert (ended["event"], ended["experiment"]) == ("session_ended", None)


def test_other_events_run_nothing(tmp_path):
    out = tmp_path / "notices.jsonl"
    notify = CommandNotifier(appender(out))
    session = fake_session(tmp_path, best=None, baseline=None)
    for e in (event("step", "step 3", 1, {"step": 3}), event("verdict", "exp 1 keep", 1),
              event("alert", "nan loss", 1, {"alert": "nan"})):  # fmt: skip
        notify(e, session)
    assert not out.exists()


def test_environment_and_working_directory(tmp_path):
    notify = CommandNotifier('printf "%s|%s" "$AUTOLAB_EVENT" "$AUTOLAB_MESSAGE" > seen.txt')
    notify(event("session_ended", "session cancelled: stopped"), fake_session(tmp_path))
    assert (tmp_path / "seen.txt").read_text() == "session_ended|session cancelled: stopped"


def test_a_failing_command_raises(tmp_path):
    notify = CommandNotifier("echo 'no route to host' >&2; exit 3")
    with pytest.raises(NotifyError, match="exited with 3.*no route to host"):
        notify(event("session_ended", "session succeeded"), fake_session(tmp_path))


def test_a_slow_command_is_killed(tmp_path):
    notify = CommandNotifier("sleep 30 & sleep 30", timeout=0.5)  # a child holds the pipes too
    started = time.monotonic()
    with pytest.raises(NotifyError, match="ran over 0.5s"):
        notify(event("session_ended", "session succeeded"), fake_session(tmp_path))
    assert time.monotonic() - started < 10


def test_the_loop_records_a_notifier_failure_as_a_note(tmp_path):
    """Through ResearchSession._event, the hook the loop calls for every event it records."""
    out = tmp_path / "notices.jsonl"
    with Ledger.for_workspace(tmp_path) as ledger:
        session = ResearchSession.__new__(ResearchSession)
        session.ledger, session.session_id = ledger, None
        session.workspace, session.best_bpb, session.noise = (
            SimpleNamespace(root=tmp_path),
            1.4,
            None,
        )
        session.listeners = [CommandNotifier(appender(out)), CommandNotifier("exit 1")]
        session._event("session_ended", "session succeeded")
        notes = [e.message for e in ledger.events() if e.kind == "note"]
    assert read(out)[0]["event"] == "session_ended" and read(out)[0]["best_val_bpb"] == 1.4
    assert notes == [
        "listener CommandNotifier('exit 1') failed: notify command exited with 1: exit 1"
    ]  # noqa: E501
