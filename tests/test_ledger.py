"""The ledger on real SQLite files: schema, append-only writes, derived views, concurrency."""

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from autolab.track.ledger import (
    SCHEMA_VERSION,
    ExperimentRecord,
    Ledger,
    LedgerError,
    ResultRecord,
    ledger_path,
)


@pytest.fixture
def ledger(tmp_path):
    with Ledger.for_workspace(tmp_path) as ledger:
        yield ledger


def add(ledger, number, kind="candidate", session_id=None, result=None, **kwargs):
    ledger.add_experiment(
        ExperimentRecord(
            number=number,
            session_id=session_id,
            kind=kind,
            commit_sha=f"{number:040x}",
            description=f"experiment {number}",
            **kwargs,
        )
    )
    if result is not None:
        ledger.add_result(number, result)


def test_schema_created_in_wal_mode(tmp_path):
    Ledger.for_workspace(tmp_path).close()
    path = ledger_path(tmp_path)
    assert path == tmp_path / ".autolab" / "ledger.db"
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    expected = {"sessions", "session_ends", "noise", "experiments", "results", "metrics", "events"}
    assert expected <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    Ledger(path).close()  # reopening an existing ledger is fine


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="upgrade autolab"):
        Ledger(path)


def test_next_number(ledger):
    assert ledger.next_number() == 1
    add(ledger, 1)
    add(ledger, 2)
    assert ledger.next_number() == 3


def test_experiment_round_trip_and_derived_status(ledger):
    add(ledger, 1, kind="baseline", params={"DEPTH": 4}, seed=7, llm_cost_usd=0.01)
    view = ledger.experiment(1)
    assert view.status == "running" and view.val_bpb is None and view.finished is None
    assert view.params == {"DEPTH": 4} and view.seed == 7 and view.llm_cost_usd == 0.01
    assert view.flags == {} and view.reason == ""

    ledger.add_result(
        1,
        ResultRecord(
            status="keep", val_bpb=1.5, peak_memory_mb=2048.0, flags={"reported_gap": 0.1}
        ),
    )
    view = ledger.experiment(1)
    assert view.status == "keep" and view.val_bpb == 1.5
    assert view.flags == {"reported_gap": 0.1} and view.finished is not None
    assert ledger.experiment(99) is None


def test_append_only(ledger):
    add(ledger, 1, result=ResultRecord(status="discard", val_bpb=1.6))
    with pytest.raises(LedgerError, match="already has a result"):
        ledger.add_result(1, ResultRecord(status="keep", val_bpb=1.4))
    assert ledger.experiment(1).status == "discard"
    with pytest.raises(LedgerError, match="already exists"):
        add(ledger, 1)
    with pytest.raises(LedgerError, match="no experiment 5"):
        ledger.add_result(5, ResultRecord(status="crash"))


def test_unknown_values_are_refused(ledger):
    with pytest.raises(ValueError, match="experiment kind"):
        add(ledger, 1, kind="wild")
    add(ledger, 1)
    with pytest.raises(ValueError, match="result status"):
        ledger.add_result(1, ResultRecord(status="great"))
    with pytest.raises(ValueError, match="event kind"):
        ledger.add_event("gossip", "hi")
    assert ledger.experiment(1).status == "running"  # the failed writes left nothing behind


def test_unfinished_and_session_filter(ledger):
    s1 = ledger.start_session("a", "autolab/a", "search", 60, "cpu", {})
    s2 = ledger.start_session("b", "autolab/b", "search", 60, "cpu", {})
    add(ledger, 1, session_id=s1, result=ResultRecord(status="keep", val_bpb=1.5))
    add(ledger, 2, session_id=s1)
    add(ledger, 3, session_id=s2)
    assert [e.number for e in ledger.unfinished()] == [2, 3]
    assert [e.number for e in ledger.unfinished(s2)] == [3]
    assert [e.number for e in ledger.experiments(s1)] == [1, 2]
    ledger.add_result(2, ResultRecord(status="interrupted", reason="loop killed"))
    assert [e.number for e in ledger.unfinished()] == [3]
    assert ledger.experiment(2).reason == "loop killed"


def test_standings_best_is_a_kept_candidate_never_a_baseline(ledger):
    assert ledger.standings().best_number is None
    s1 = ledger.start_session("a", "b", "search", 60, "cpu", {})
    s2 = ledger.start_session("b", "b", "search", 60, "cpu", {})
    add(ledger, 1, "baseline", s1, ResultRecord(status="keep", val_bpb=1.50))
    add(ledger, 2, "candidate", s1, ResultRecord(status="discard", val_bpb=1.10))
    add(ledger, 3, "candidate", s1, ResultRecord(status="keep", val_bpb=1.40))
    add(ledger, 4, "candidate", s1, ResultRecord(status="crash"))
    add(ledger, 5, "candidate", s1)
    add(ledger, 6, "baseline", s2, ResultRecord(status="keep", val_bpb=1.45))
    assert ledger.standings("a").best_number == 3
    assert ledger.standings("b").best_number is None  # a baseline run is no improvement
    assert ledger.standings().tag == "b"  # the latest session's branch


def test_sessions_with_end_and_noise(ledger):
    assert ledger.latest_session() is None
    s1 = ledger.start_session("mar5", "autolab/mar5", "llm", 300.0, "H100", {"seed": 1})
    s2 = ledger.start_session("mar6", "autolab/mar6", "search", 60.0, "cpu", {})
    ledger.record_noise(s1, 1.5, 0.01, 3)
    ledger.record_noise(s1, 1.49, 0.008, 5)  # a later measurement wins
    ledger.end_session(s1, "succeeded", "budget spent")
    first, second = ledger.sessions()
    assert (first.id, first.tag, first.config, first.hardware) == (s1, "mar5", {"seed": 1}, "H100")
    assert (first.status, first.reason) == ("succeeded", "budget spent")
    assert first.noise.spread == 0.008 and first.noise.runs == 5
    assert second.status is None and second.ended is None and second.noise is None
    assert ledger.latest_session().id == s2
    with pytest.raises(LedgerError, match="already ended"):
        ledger.end_session(s1, "failed")
    with pytest.raises(ValueError):
        ledger.end_session(s2, "exploded")
    with pytest.raises(LedgerError, match="no session"):
        ledger.record_noise(42, 1.0, 0.1, 2)


def test_events_filtering(ledger):
    ids = [ledger.add_event("note", f"note {i}", number=i % 2, data={"i": i}) for i in range(6)]
    assert ids == sorted(ids)
    assert [e.message for e in ledger.events()] == [f"note {i}" for i in range(6)]
    assert [e.data["i"] for e in ledger.events(after_id=ids[3])] == [4, 5]
    assert [e.data["i"] for e in ledger.events(number=1)] == [1, 3, 5]
    assert [e.data["i"] for e in ledger.events(last=2)] == [4, 5]
    assert [e.data["i"] for e in ledger.events(number=0, last=2)] == [2, 4]
    assert [e.data["i"] for e in ledger.events(limit=2)] == [0, 1]
    assert [e.data["i"] for e in ledger.events(after_id=ids[1], limit=2)] == [2, 3]
    s = ledger.start_session("t", "b", "search", 60, "cpu", {})
    ledger.add_event("alert", "loss is NaN", session_id=s, number=3, data={"alert": "nan"})
    (alert,) = ledger.events(session_id=s)
    assert (alert.kind, alert.number, alert.data) == ("alert", 3, {"alert": "nan"})
    assert ledger.events(after_id=alert.id) == []


def test_metrics_round_trip(ledger):
    add(ledger, 1)
    rows = [
        {"step": s, "progress": s / 10, "loss": 3.0 - s * 0.1, "lr": 1e-3, "tokens_per_sec": 1e5,
         "memory_mb": 512.0, "training_seconds": s * 0.5, "time": 1000.0 + s,
         "tokens": 1024 * s, "dev_loss": None if s else 2.9}
        for s in (2, 0, 1)
    ]  # fmt: skip
    ledger.add_metrics(1, rows)
    ledger.add_metrics(1, [{"step": 3, "loss": 2.6, "extra": "ignored"}])
    ledger.add_metrics(1, [])
    got = ledger.metrics(1)
    assert [m["step"] for m in got] == [0, 1, 2, 3]
    assert got[1] == sorted(rows, key=lambda r: r["step"])[1]
    assert got[3]["loss"] == 2.6 and got[3]["lr"] is None and "extra" not in got[3]
    assert ledger.metrics(2) == []


def test_shared_between_threads(ledger):
    add(ledger, 1)
    errors = []

    def write():
        try:
            for i in range(200):
                ledger.add_event("step", f"step {i}", number=1)
        except Exception as err:  # surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        ledger.events(number=1, last=5)
        ledger.experiments()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ledger.events(number=1)) == 600


READER = textwrap.dedent(
    """
    import sys, time
    from autolab.track.ledger import Ledger
    queries = 0
    with Ledger(sys.argv[1]) as ledger:
        end = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < end:
            ledger.experiments(); ledger.events(last=20); ledger.sessions(); ledger.standings()
            ledger.unfinished(); ledger.next_number()
            if queries % 50 == 0:
                ledger.add_event("note", "reader was here")  # views may write the odd note
            queries += 1
    print(queries)
    """
)


def test_one_writer_and_reader_processes(tmp_path):
    path = ledger_path(tmp_path)
    with Ledger(path) as ledger:
        readers = [
            subprocess.Popen(
                [sys.executable, "-c", READER, str(path), "1.5"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        session = ledger.start_session("t", "b", "search", 60, "cpu", {})
        number, end = 1, time.monotonic() + 1.5
        while time.monotonic() < end:
            add(ledger, number, session_id=session)
            ledger.add_metrics(number, [{"step": s, "loss": 1.0} for s in range(20)])
            ledger.add_event("finished", "done", session_id=session, number=number)
            ledger.add_result(number, ResultRecord(status="discard", val_bpb=1.0))
            number += 1
        for reader in readers:
            out, err = reader.communicate(timeout=60)
            assert reader.returncode == 0, err
            assert int(out) > 0
        assert len(ledger.experiments()) == number - 1 > 1
        assert ledger.unfinished() == []


# --- integrity: the schema's objects, the hash chain, the v1 migration ---------------------------


def test_a_trigger_or_an_extra_table_is_refused_in_one_line(tmp_path):
    Ledger.for_workspace(tmp_path).close()
    conn = sqlite3.connect(ledger_path(tmp_path))
    conn.execute("CREATE TRIGGER keep_all AFTER INSERT ON results BEGIN"
                 " UPDATE results SET status = 'keep'; END")  # fmt: skip
    conn.commit()
    with pytest.raises(LedgerError, match="trigger keep_all, which autolab did not create"):
        Ledger.for_workspace(tmp_path)
    conn.execute("DROP TRIGGER keep_all")
    conn.execute("CREATE VIEW best AS SELECT * FROM results")
    conn.commit()
    conn.close()
    done = subprocess.run([sys.executable, "-m", "autolab", "status", "-C", str(tmp_path)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "view best" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_chain_names_an_edited_a_deleted_and_an_inserted_row(ledger):
    session = ledger.start_session("a", "b", "search", 60, "cpu", {})
    add(ledger, 1, "baseline", session, ResultRecord(status="keep", val_bpb=1.5))
    add(ledger, 2, "candidate", session, ResultRecord(status="discard", val_bpb=1.6))
    ledger.add_metrics(2, [{"step": 1, "loss": float("nan")}, {"step": 2, "loss": 1.0}])
    ledger.add_event("note", "hello", session)
    assert ledger.verify() == []  # a NaN stored as NULL, 12.0 stored as 12: still intact
    conn = sqlite3.connect(ledger.path)
    conn.execute("UPDATE results SET val_bpb = 0.1, status = 'keep' WHERE number = 2")
    conn.commit()
    assert ledger.verify() == ["results row of experiment 2 was edited after autolab wrote it"]
    conn.execute("INSERT INTO experiments (number, kind, description) VALUES (3, 'candidate', 'x')")
    conn.commit()
    assert "experiments row of experiment 3 was inserted outside autolab" in ledger.verify()
    conn.execute("DELETE FROM events")
    conn.commit()
    assert any("deleted" in p for p in ledger.verify())
    conn.close()


V1_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, tag TEXT, branch TEXT, researcher TEXT,
    budget_seconds REAL, started REAL, hardware TEXT, config_json TEXT);
CREATE TABLE session_ends (session_id INTEGER PRIMARY KEY, ended REAL, status TEXT, reason TEXT);
CREATE TABLE noise (session_id INTEGER, baseline_bpb REAL, spread REAL, runs INTEGER, created REAL);
CREATE TABLE experiments (number INTEGER PRIMARY KEY, session_id INTEGER, kind TEXT,
    parent_commit TEXT, commit_sha TEXT, description TEXT, researcher TEXT, seed INTEGER,
    params_json TEXT, created REAL, llm_prompt_tokens INTEGER, llm_completion_tokens INTEGER,
    llm_cost_usd REAL, rechecks INTEGER);
CREATE TABLE results (number INTEGER PRIMARY KEY, status TEXT, reason TEXT, val_bpb REAL,
    reported_val_bpb REAL, peak_memory_mb REAL, wall_seconds REAL, training_seconds REAL,
    total_seconds REAL, tokens_per_sec REAL, num_steps INTEGER, num_params_M REAL, hardware TEXT,
    flags_json TEXT, finished REAL);
CREATE TABLE metrics (number INTEGER, step INTEGER, progress REAL, loss REAL, lr REAL,
    tokens_per_sec REAL, memory_mb REAL, training_seconds REAL, time REAL);
CREATE INDEX metrics_number_step ON metrics (number, step);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL, session_id INTEGER,
    number INTEGER, kind TEXT, message TEXT, data_json TEXT);
CREATE INDEX events_number ON events (number);
INSERT INTO sessions VALUES (1, 'old', 'autolab/old', 'search', 60, 0, 'cpu',
    '{"k": 2.0, "min_delta": 0.002, "greedy": false}');
INSERT INTO noise VALUES (1, 2.0, 0.01, 2, 0);
INSERT INTO experiments (number, session_id, kind, description) VALUES
    (1, 1, 'baseline', 'b1'), (2, 1, 'baseline', 'b2'), (3, 1, 'candidate', 'win'),
    (4, 1, 'recheck', 're-check of 3');
INSERT INTO results (number, status, val_bpb, flags_json) VALUES
    (1, 'keep', 1.99, '{}'), (2, 'keep', 2.01, '{}'), (4, 'keep', 1.99, '{}'),
    (3, 'keep', 1.97, '{"recheck_scores": [1.97, 1.99], "mean_bpb": 1.98}');
PRAGMA user_version = 1;
"""


def test_a_v1_ledger_is_migrated_its_chain_starting_there(tmp_path):
    path = ledger_path(tmp_path)
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    with Ledger(path) as ledger:
        assert ledger.experiment(3).score == pytest.approx(1.98)  # the re-check mean, typed
        assert ledger.experiment(1).score == pytest.approx(1.99)
        standings = ledger.standings("old")
        assert standings.best_number == 3 and standings.delta == pytest.approx(-0.02)
        assert ledger.verify() == []  # the old rows are before the chain
        ledger.add_event("note", "after the migration")
        assert ledger.verify() == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute("UPDATE events SET message = 'edited'")
    conn.commit()
    conn.close()
    with Ledger(path) as ledger:
        assert ledger.verify() == ["events row 1 was edited after autolab wrote it"]


def test_a_v2_ledger_gets_the_tokens_and_dev_loss_columns_its_chain_intact(tmp_path):
    path = ledger_path(tmp_path)
    with Ledger(path) as ledger:
        session = ledger.start_session("a", "b", "search", 60, "cpu", {})
        add(ledger, 1, "baseline", session, ResultRecord(status="keep", val_bpb=1.5))
        ledger.add_metrics(1, [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
    conn = sqlite3.connect(path)  # what a v2 ledger was: the metrics without the two columns
    conn.execute("ALTER TABLE metrics DROP COLUMN tokens")
    conn.execute("ALTER TABLE metrics DROP COLUMN dev_loss")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Ledger(path) as ledger:
        assert ledger.verify() == []  # the rows chained at v2 keep their hashes
        ledger.add_metrics(1, [{"step": 3, "loss": 1.4, "tokens": 3072, "dev_loss": 1.6}])
        assert ledger.metrics(1)[-1]["tokens"] == 3072 and ledger.verify() == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute("UPDATE metrics SET dev_loss = 0.1 WHERE step = 1")  # set on a pre-v3 row
    conn.commit()
    conn.close()
    with Ledger(path) as ledger:
        assert ledger.verify() == ["metrics row 1 (experiment 1) was edited after autolab wrote it"]
