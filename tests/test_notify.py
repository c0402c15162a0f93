"""CommandNotifier with real shell commands: payloads on stdin, failures, the time limit."""

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autolab.notify import CommandNotifier, NotifyError
from autolab.research.recorder import Recorder
from autolab.track.ledger import EventRow, ExperimentRecord, Ledger, NoiseRow, ResultRecord
from autolab.track.standings import compute


def appender(path: Path) -> str:
    """A command that appends its stdin (one JSON line) to `path`."""
    code = f"import sys; open({str(path)!r}, 'a').write(sys.stdin.read())"
    return f'{sys.executable} -c "{code}"'


def fake_session(root: Path, best=1.5, baseline=1.6):
    """A session whose branch has one baseline run and, when best is given, one keep."""
    noise = NoiseRow(baseline, 0.01, 1, 0.0) if baseline else None
    views = []
    with Ledger.for_workspace(root / "scratch") as ledger:
        ledger.add_experiment(ExperimentRecord(1, None, "baseline", "a" * 40, "baseline"))
        ledger.add_result(1, ResultRecord("keep", val_bpb=baseline))
        if best is not None:
            ledger.add_experiment(ExperimentRecord(7, None, "candidate", "b" * 40, "better"))
            ledger.add_result(7, ResultRecord("keep", val_bpb=best))
        views = ledger.experiments()
    standings = compute(views, noise, {})
    return SimpleNamespace(
        workspace=SimpleNamespace(root=root), session_id=3, standings=lambda: standings
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
        "best_experiment": 7,
        "baseline_val_bpb": 1.6,
        "delta": pytest.approx(-0.1),
        "counts": {
            "kept": 1,
            "discarded": 0,
            "crashed": 0,
            "timed_out": 0,
            "invalid": 0,
            "interrupted": 0,
            "pruned": 0,
            "running": 0,
            "rechecks": 0,
            "baseline_runs": 1,
            "confirm_runs": 0,
            "failed": 0,
        },  # fmt: skip
        "confirmed": None,  # the best not re-run beside the reference yet (autolab confirm)
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
    """Through the session's Recorder, which hands every event it writes to the listeners."""
    out = tmp_path / "notices.jsonl"
    with Ledger.for_workspace(tmp_path) as ledger:
        recorder = Recorder(ledger, None, tmp_path / "results.tsv")  # no branch yet
        recorder.subject = SimpleNamespace(workspace=SimpleNamespace(root=tmp_path),
                                           session_id=None, standings=ledger.standings)  # fmt: skip
        recorder.listeners = [CommandNotifier(appender(out)), CommandNotifier("exit 1")]
        written = recorder.event("session_ended", "session succeeded")
        notes = [e.message for e in ledger.events() if e.kind == "note"]
        assert ledger.events()[0] == written  # the row handed over is the row in the ledger
    assert read(out)[0]["event"] == "session_ended" and read(out)[0]["best_val_bpb"] is None
    assert notes == [
        "listener CommandNotifier('exit 1') failed: notify command exited with 1: exit 1"
    ]  # noqa: E501
