"""`autolab events` and `autolab status` on real SQLite ledgers and real subprocesses."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from autolab.track.ledger import EventRow, ExperimentRecord, Ledger, ResultRecord
from autolab.track.standings import KILLED_REASON
from autolab.views.events import event_line, event_style, follow
from autolab.views.status import session_status

# The CLI as a person runs it; the commands are added to cli.COMMANDS if it lacks them yet.
RUNNER = """
import sys
from autolab import cli
for name in ("events", "status", "report"):
    if name not in cli.COMMANDS:
        cli.COMMANDS.append(name)
sys.exit(cli.main(sys.argv[1:]))
"""


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        capture_output=True, text=True, env=env, timeout=60, **kwargs,
    )  # fmt: skip


def popen_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def new_session(ledger: Ledger, pid: int | None = None, **config) -> int:
    config = {"base_commit": "0" * 40, "baseline_runs": 1, **config}
    if pid is not None:
        config["pid"] = pid
    session = ledger.start_session("t", "autolab/t", "search", 30.0, "cpu", config)
    ledger.add_event("session_started", f"session {session} on autolab/t", session, None,
                     {"pid": pid} if pid else None)  # fmt: skip
    return session


def experiment(ledger, session, number, kind="candidate", result=None, desc=None):
    ledger.add_experiment(
        ExperimentRecord(number, session, kind, f"{number:040x}", desc or f"change {number}")
    )
    if result is not None:
        ledger.add_result(number, result)


def finished_session(ledger: Ledger) -> int:
    """A baseline, a keep, a discard and a crash, then the end."""
    session = new_session(ledger, pid=dead_pid(), max_experiments=3)
    experiment(ledger, session, 1, "baseline", ResultRecord("keep", val_bpb=2.0, wall_seconds=10))
    ledger.record_noise(session, 2.0, 0.01, 1)
    experiment(ledger, session, 2, result=ResultRecord("keep", val_bpb=1.9, wall_seconds=10))
    experiment(ledger, session, 3, result=ResultRecord("discard", val_bpb=1.95, wall_seconds=12))
    experiment(ledger, session, 4, result=ResultRecord("crash", "boom", wall_seconds=2))
    ledger.add_event("step", "exp 2  step 10 (50%)  loss 2.000", session, 2,
                     {"step": 10, "progress": 0.5, "loss": 2.0, "lr": 1e-3})  # fmt: skip
    ledger.add_event("verdict", "exp 2 keep 1.9000: better", session, 2,
                     {"status": "keep", "val_bpb": 1.9})  # fmt: skip
    ledger.add_event("verdict", "exp 4 crash: boom", session, 4, {"status": "crash"})
    ledger.end_session(session, "succeeded")
    ledger.add_event("session_ended", "session succeeded", session)
    return session


@pytest.fixture
def ws(tmp_path) -> Path:
    return tmp_path


# --- formatting ---------------------------------------------------------------------------------


def at(hour: int, minute: int, second: int) -> float:
    return datetime.now().replace(hour=hour, minute=minute, second=second).timestamp()


def test_step_event_line_is_pinned():
    data = {"step": 118, "progress": 0.236, "loss": 1.2341, "lr": 3e-4,
            "tokens_per_sec": 12345.0, "memory_mb": 300.0, "total_steps": 500}  # fmt: skip
    event = EventRow(1, at(8, 1, 12), 1, 7, "step", "exp 7  step 118 (24%)  loss 1.234", data)
    assert (
        event_line(event)
        == "08:01:12  exp 7  step 118/500 (24%)  loss 1.234  lr 3.0e-4  12.3k tok/s"
    )  # noqa: E501
    del data["total_steps"]
    assert (
        event_line(event) == "08:01:12  exp 7  step 118 (24%)  loss 1.234  lr 3.0e-4  12.3k tok/s"
    )  # noqa: E501


def test_verdict_line_and_colours():
    def verdict(status):
        return EventRow(2, at(23, 59, 1), 1, 9, "verdict", f"exp 9 {status} 1.2345:  why\nnot",
                        {"status": status, "val_bpb": 1.2345})  # fmt: skip

    assert event_line(verdict("keep")) == "23:59:01  exp 9 keep 1.2345: why not"
    assert event_style(verdict("keep")) == "green"
    assert event_style(verdict("discard")) == "dim"
    for status in ("crash", "timeout", "invalid"):
        assert event_style(verdict(status)) == "red"


# --- events -------------------------------------------------------------------------------------


def test_events_lines_and_json(ws):
    with Ledger.for_workspace(ws) as ledger:
        finished_session(ledger)
    done = cli("events", "-C", str(ws))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].endswith("session succeeded")
    assert any(line.endswith("exp 2  step 10 (50%)  loss 2.000  lr 1.0e-3") for line in lines)

    done = cli("events", "-C", str(ws), "--json", "--experiment", "2")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["step", "verdict"]
    assert rows[1]["data"] == {"status": "keep", "val_bpb": 1.9}

    done = cli("events", "-C", str(ws), "--json", "--last", "2")
    assert [json.loads(line)["kind"] for line in done.stdout.splitlines()] == [
        "verdict",
        "session_ended",
    ]


def test_events_usage_errors(ws):
    done = cli("events", "-C", str(ws))
    assert done.returncode == 2
    assert "autolab research" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    with Ledger.for_workspace(ws) as ledger:
        finished_session(ledger)
    done = cli("events", "-C", str(ws), "--experiment", "99")
    assert done.returncode == 2 and "no experiment 99" in done.stderr


def test_follow_prints_new_events_and_exits_at_session_end(ws):
    with Ledger.for_workspace(ws) as ledger:
        session = new_session(ledger, pid=os.getpid())  # this test's process: alive
        experiment(ledger, session, 1, "baseline")
        proc = popen_cli("events", "-C", str(ws), "--follow", "--json")
        try:
            first = json.loads(proc.stdout.readline())  # the backlog is printed first
            assert first["kind"] == "session_started"
            for step in (1, 2, 3):
                ledger.add_event("step", f"step {step}", session, 1, {"step": step})
                time.sleep(0.1)
            ledger.end_session(session, "succeeded")
            ledger.add_event("session_ended", "session succeeded", session)
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds == ["step", "step", "step", "session_ended"]


def test_follow_exits_when_the_session_process_is_gone(ws):
    with Ledger.for_workspace(ws) as ledger:
        new_session(ledger, pid=dead_pid())
    done = cli("events", "-C", str(ws), "--follow")
    assert done.returncode == 0 and "session 1 on autolab/t" in done.stdout


def test_follow_reads_once_more_after_the_process_is_gone(ws):
    """An event written just before the process went is still printed."""
    with Ledger.for_workspace(ws) as ledger:
        session = new_session(ledger)
        checks = []

        def is_over():
            checks.append(1)
            ledger.add_event("note", "last words", session)
            return True

        events = list(follow(ledger, 0, is_over, session_id=session, sleep=lambda s: None))
    assert [e.message for e in events][-1] == "last words" and len(checks) == 1


# --- status -------------------------------------------------------------------------------------


def test_status_of_a_running_session(ws):
    with Ledger.for_workspace(ws) as ledger:
        session = new_session(ledger, pid=os.getpid(), max_experiments=4)
        assert session_status(ledger).state == "queued"
        experiment(ledger, session, 1, "baseline", ResultRecord("keep", val_bpb=2.0,
                                                                wall_seconds=100))  # fmt: skip
        ledger.record_noise(session, 2.0, 0.02, 1)
        experiment(ledger, session, 2, result=ResultRecord("keep", val_bpb=1.8, wall_seconds=100))
        experiment(ledger, session, 3, desc="wider MLP")
        ledger.add_metrics(3, [{"step": 5, "progress": 0.25, "loss": 2.5},
                               {"step": 9, "progress": 0.5, "loss": 2.25}])  # fmt: skip
        status = session_status(ledger)
    assert status.state == "running" and status.pid == os.getpid()
    assert status.running.number == 3 and status.running.description == "wider MLP"
    assert status.running.progress == 0.5 and status.running.loss == 2.25
    assert status.counts.by_status() == {"keep": 1}
    assert status.best_bpb == 1.8 and status.delta == pytest.approx(-0.2)
    # 3 candidates still to run (one of them under way) at 100 s each.
    assert 200 < status.remaining_seconds <= 300

    done = cli("status", "-C", str(ws), "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["state"] == "running" and payload["running"]["number"] == 3
    done = cli("status", "-C", str(ws))
    assert "running" in done.stdout and "wider MLP" in done.stdout and "1.8000" in done.stdout


def test_status_of_a_killed_session(ws):
    with Ledger.for_workspace(ws) as ledger:
        session = new_session(ledger, pid=dead_pid())
        experiment(ledger, session, 1, "baseline")
        status = session_status(ledger)
    assert (status.state, status.reason) == ("killed", KILLED_REASON)
    assert status.running is None and status.remaining_seconds is None


def test_status_of_ended_sessions(ws):
    with Ledger.for_workspace(ws) as ledger:
        finished_session(ledger)
        status = session_status(ledger)
        assert status.state == "succeeded"
        assert status.counts.by_status() == {"keep": 1, "discard": 1, "crash": 1}
        assert (status.best_number, status.reference_bpb, status.noise_spread) == (2, 2.0, 0.01)
        session = new_session(ledger, pid=os.getpid())
        ledger.end_session(session, "cancelled", "stopped by the user")
        status = session_status(ledger)
    assert (status.state, status.reason) == ("cancelled", "stopped by the user")
    done = cli("status", "-C", str(ws))
    assert "cancelled" in done.stdout


def test_status_without_a_ledger_is_a_usage_error(ws):
    done = cli("status", "-C", str(ws))
    assert done.returncode == 2 and "autolab research" in done.stderr
