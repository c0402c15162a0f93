"""The ledger: an append-only SQLite database, the single source of truth of a workspace.

Rules every writer keeps:
- Rows are only inserted, never updated or deleted. State is derived by joins: an experiment
  without a `results` row is running (or was interrupted before anything recorded it); a
  session without a `session_ends` row is open (or its process was killed).
- Each write is one transaction. It begins IMMEDIATE: in WAL mode a transaction that reads
  first and writes later cannot wait for the write lock, it fails with "database is locked";
  taking the lock up front lets `busy_timeout` do the waiting instead.
- One process writes (the research loop); any number of processes read (dashboard, CLI views)
  and may add the odd event. WAL lets readers run while the writer writes.

The file is `<workspace>/.autolab/ledger.db`. Schema changes bump SCHEMA_VERSION, kept in
`PRAGMA user_version`; an older ledger is migrated when opened (v1 -> v2 adds the `score` and
`chain` columns; v2 -> v3 the metrics' `tokens` and `dev_loss`). Every row is chained by hash to
the one written before it, and the file may hold only the objects SCHEMA creates: see `chain`
for what that catches. Opening a ledger that holds anything else (a trigger, a view, a table)
is refused.
"""

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from autolab.errors import UsageError
from autolab.track import chain

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000

# manual: an `autolab train` a person ran (researcher "manual", no session); a `--repeat` adds
# recheck rows of it, as the loop's re-check does. confirm: a re-run, after the search, of the
# reference or the best recipe with a fresh seed (research.confirm); a measurement, never a keep
# or a discard, even when recorded as keep.
KINDS = ("baseline", "candidate", "recheck", "manual", "confirm")
# pruned: a candidate stopped early by `research --prune`, its dev loss hopeless against the
# best's curve (research.pruning); no sealed score, and not a failure of the change.
RESULT_STATUSES = ("keep", "discard", "crash", "timeout", "invalid", "interrupted", "pruned")
SCORED_STATUSES = ("keep", "discard")  # the results that have a score
FAILED_STATUSES = ("crash", "timeout", "invalid")  # the one list: every view imports it
SESSION_STATUSES = ("succeeded", "failed", "cancelled")
EVENT_KINDS = (
    "created",
    "started",
    "step",
    "evaluation",
    "finished",
    "verdict",
    "alert",  # data {"alert": "nan" | "crash_streak" | "new_best" | "worker_died", ...}
    "session_started",
    "session_ended",
    "note",
)
METRIC_KEYS = (
    "step",
    "progress",
    "loss",
    "lr",
    "tokens_per_sec",
    "memory_mb",
    "training_seconds",
    "time",
    "tokens",  # trained on so far, warm-up included
    "dev_loss",  # mean loss per token on a slice of the dev split, on the few steps measured
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, tag TEXT, branch TEXT, researcher TEXT, budget_seconds REAL,
    started REAL, hardware TEXT, config_json TEXT, chain TEXT);
CREATE TABLE IF NOT EXISTS session_ends (
    session_id INTEGER PRIMARY KEY, ended REAL, status TEXT, reason TEXT, chain TEXT);
CREATE TABLE IF NOT EXISTS noise (
    session_id INTEGER, baseline_bpb REAL, spread REAL, runs INTEGER, created REAL, chain TEXT);
CREATE TABLE IF NOT EXISTS experiments (
    number INTEGER PRIMARY KEY, session_id INTEGER, kind TEXT, parent_commit TEXT,
    commit_sha TEXT, description TEXT, researcher TEXT, seed INTEGER, params_json TEXT,
    created REAL, llm_prompt_tokens INTEGER, llm_completion_tokens INTEGER, llm_cost_usd REAL,
    rechecks INTEGER, chain TEXT);
CREATE TABLE IF NOT EXISTS results (
    number INTEGER PRIMARY KEY, status TEXT, reason TEXT, val_bpb REAL, reported_val_bpb REAL,
    peak_memory_mb REAL, wall_seconds REAL, training_seconds REAL, total_seconds REAL,
    tokens_per_sec REAL, num_steps INTEGER, num_params_M REAL, hardware TEXT, flags_json TEXT,
    finished REAL, score REAL, chain TEXT);
CREATE TABLE IF NOT EXISTS metrics (
    number INTEGER, step INTEGER, progress REAL, loss REAL, lr REAL, tokens_per_sec REAL,
    memory_mb REAL, training_seconds REAL, time REAL, tokens INTEGER, dev_loss REAL, chain TEXT);
CREATE INDEX IF NOT EXISTS metrics_number_step ON metrics (number, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL, session_id INTEGER, number INTEGER,
    kind TEXT, message TEXT, data_json TEXT, chain TEXT);
CREATE INDEX IF NOT EXISTS events_number ON events (number);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT);
"""
# The objects SCHEMA creates, as sqlite_master lists them: the only ones a ledger may hold.
KNOWN_OBJECTS = {
    (kind.lower(), name)
    for kind, name in re.findall(r"CREATE (TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA)
}
# v1 -> v2: the score as a column (it was flags["mean_bpb"] for a re-checked keep), and the
# chain, which starts at the migration.
MIGRATE_V1 = (
    """
ALTER TABLE results ADD COLUMN score REAL;
UPDATE results SET score = COALESCE(json_extract(flags_json, '$.mean_bpb'), val_bpb)
    WHERE status IN ('keep', 'discard');
"""
    + "".join(f"ALTER TABLE {t} ADD COLUMN chain TEXT;\n" for t in chain.CHAINED_TABLES)
    + """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT);
"""
)
# v2 -> v3: per-step tokens and dev loss; chain.LATE_COLUMNS keeps the older rows' hashes.
MIGRATE_V2 = """
ALTER TABLE metrics ADD COLUMN tokens INTEGER;
ALTER TABLE metrics ADD COLUMN dev_loss REAL;
"""


class LedgerError(UsageError):
    """A write the ledger refuses (it would rewrite history or break a reference), or a ledger
    it refuses to open. One line, as every UsageError: the loop and the CLI print it so."""


@dataclass
class ExperimentRecord:
    """One row of `experiments`: what was tried, written before it runs."""

    number: int
    session_id: int | None
    kind: str  # baseline | candidate | recheck | manual | confirm
    commit_sha: str
    description: str
    parent_commit: str = ""
    researcher: str = ""
    seed: int | None = None
    params: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    llm_prompt_tokens: int | None = None
    llm_completion_tokens: int | None = None
    llm_cost_usd: float | None = None
    rechecks: int | None = None  # number of the experiment this one re-checks


@dataclass
class ResultRecord:
    """One row of `results`: how an experiment ended. val_bpb is the sealed score."""

    status: str  # keep | discard | crash | timeout | invalid | interrupted | pruned
    reason: str = ""
    val_bpb: float | None = None
    reported_val_bpb: float | None = None  # what the experiment itself printed
    peak_memory_mb: float | None = None
    wall_seconds: float | None = None
    training_seconds: float | None = None
    total_seconds: float | None = None
    tokens_per_sec: float | None = None
    num_steps: int | None = None
    num_params_M: float | None = None
    hardware: str = ""
    flags: dict = field(default_factory=dict)  # e.g. {"reported_gap": 0.12}
    finished: float = field(default_factory=time.time)
    # The number the verdict used: the mean over its re-check when it had one, else val_bpb
    # (filled in by add_result). Only keep and discard have one.
    score: float | None = None


@dataclass
class ExperimentView:
    """An experiment joined with its result; status is "running" until a result exists."""

    number: int
    session_id: int | None
    kind: str
    parent_commit: str
    commit_sha: str
    description: str
    researcher: str
    seed: int | None
    params: dict
    created: float
    llm_prompt_tokens: int | None
    llm_completion_tokens: int | None
    llm_cost_usd: float | None
    rechecks: int | None
    status: str
    reason: str
    val_bpb: float | None
    reported_val_bpb: float | None
    peak_memory_mb: float | None
    wall_seconds: float | None
    training_seconds: float | None
    total_seconds: float | None
    tokens_per_sec: float | None
    num_steps: int | None
    num_params_M: float | None
    hardware: str
    flags: dict
    finished: float | None
    score: float | None  # see ResultRecord.score

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NoiseRow:
    baseline_bpb: float
    spread: float
    runs: int
    created: float


@dataclass
class SessionView:
    """A session with its end (status None while open) and its latest noise measurement."""

    id: int
    tag: str
    branch: str
    researcher: str
    budget_seconds: float | None
    started: float
    hardware: str
    config: dict
    ended: float | None
    status: str | None  # succeeded | failed | cancelled, None while open (or killed)
    reason: str
    noise: NoiseRow | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EventRow:
    id: int
    time: float
    session_id: int | None
    number: int | None
    kind: str
    message: str
    data: dict

    def to_dict(self) -> dict:
        return asdict(self)


def ledger_path(workspace: str | Path) -> Path:
    return Path(workspace) / ".autolab" / "ledger.db"


def require_ledger(workspace: str | Path) -> Path:
    """The workspace's ledger path; a UsageError saying what to do when there is none yet."""
    path = ledger_path(workspace)
    if not path.is_file():
        from autolab.errors import UsageError

        raise UsageError(
            f"no ledger in {Path(workspace).resolve()}: run `autolab research` there first"
        )
    return path


def _dumps(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(text: str | None) -> dict:
    return json.loads(text) if text else {}


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


# Column lists follow the record dataclasses; dicts are stored as JSON in `<name>_json`.
_EXPERIMENT_COLUMNS = [f.name for f in fields(ExperimentRecord)]
_EXPERIMENT_COLUMNS[_EXPERIMENT_COLUMNS.index("params")] = "params_json"
_RESULT_COLUMNS = [f.name for f in fields(ResultRecord)]
_RESULT_COLUMNS[_RESULT_COLUMNS.index("flags")] = "flags_json"
_EXPERIMENT_SELECT = (
    "SELECT "
    + ", ".join(f"e.{c}" for c in _EXPERIMENT_COLUMNS)
    + ", r.number IS NOT NULL AS has_result, "
    + ", ".join(f"r.{c}" for c in _RESULT_COLUMNS)
    + " FROM experiments e LEFT JOIN results r ON r.number = e.number"
)
_SESSION_SELECT = """
SELECT s.*, se.ended, se.status, se.reason,
       n.baseline_bpb, n.spread, n.runs, n.created AS noise_created
FROM sessions s
LEFT JOIN session_ends se ON se.session_id = s.id
LEFT JOIN noise n ON n.rowid = (SELECT MAX(rowid) FROM noise WHERE session_id = s.id)
"""


def _experiment_view(row: sqlite3.Row) -> ExperimentView:
    d = dict(row)
    d["params"] = _loads(d.pop("params_json"))
    d["flags"] = _loads(d.pop("flags_json"))
    if not d.pop("has_result"):
        d["status"] = "running"
    # Text columns read as "" when NULL: a row written outside autolab may leave them empty,
    # and a view must name it, not crash on it.
    for key in ("reason", "hardware", "description", "commit_sha", "parent_commit", "researcher",
                "kind"):  # fmt: skip
        d[key] = d[key] or ""
    return ExperimentView(**d)


def _session_view(row: sqlite3.Row) -> SessionView:
    d = dict(row)
    d.pop("chain")
    noise = [d.pop(k) for k in ("baseline_bpb", "spread", "runs", "noise_created")]
    d["noise"] = None if noise[2] is None else NoiseRow(*noise)
    d["config"] = _loads(d.pop("config_json"))
    d["hardware"] = d["hardware"] or ""
    d["reason"] = d["reason"] or ""
    return SessionView(**d)


class Ledger:
    """The append-only record of a workspace's sessions, experiments, results, metrics, events.

    One connection per object, shared by threads under a lock; open one Ledger per process.
    Opening an existing, current ledger writes nothing, so read-only views are cheap.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: sqlite3 opens no transactions behind our back; _write does.
        self._conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._refuse_foreign_objects()
        self._migrate()

    @classmethod
    def for_workspace(cls, workspace: str | Path) -> "Ledger":
        return cls(ledger_path(workspace))

    def _refuse_foreign_objects(self) -> None:
        """A trigger could rewrite every verdict as it is written: refuse before any write."""
        foreign = chain.foreign_objects(self._conn, KNOWN_OBJECTS)
        if foreign:
            self.close()
            raise LedgerError(
                f"{self.path} holds {', '.join(foreign[:3])}, which autolab did not create: "
                "something other than autolab changed it; move it aside (or restore a copy) "
                "and start again"
            )

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            self.close()
            raise LedgerError(
                f"{self.path} has schema v{version}, newer than this autolab's "
                f"v{SCHEMA_VERSION}: upgrade autolab"
            )
        scripts = {0: [SCHEMA], 1: [MIGRATE_V1, MIGRATE_V2], 2: [MIGRATE_V2]}[version]
        with self._write() as conn:
            for script in scripts:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < 2:  # the chain starts with a new ledger or at the v1 migration
                chain.start(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def verify(self) -> list[str]:
        """Rows that do not match the hash chain, one line each; empty when intact."""
        with self._lock:
            return chain.verify(self._conn)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its first statement."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writes -------------------------------------------------------------------------------

    def start_session(
        self,
        tag: str,
        branch: str,
        researcher: str,
        budget_seconds: float,
        hardware: str,
        config: dict,
    ) -> int:
        row = {"tag": tag, "branch": branch, "researcher": researcher,
               "budget_seconds": budget_seconds, "started": time.time(), "hardware": hardware,
               "config_json": _dumps(config)}  # fmt: skip
        with self._write() as conn:
            return chain.insert(conn, "sessions", row)

    def end_session(self, session_id: int, status: str, reason: str = "") -> None:
        _check(status, SESSION_STATUSES, "session status")
        with self._write() as conn:
            self._require(conn, "sessions", "id", session_id, "session")
            ended = conn.execute(
                "SELECT status FROM session_ends WHERE session_id = ?", (session_id,)
            ).fetchone()
            if ended:
                raise LedgerError(f"session {session_id} already ended ({ended[0]})")
            chain.insert(conn, "session_ends", {"session_id": session_id, "ended": time.time(),
                                                "status": status, "reason": reason})  # fmt: skip

    def record_noise(self, session_id: int, baseline_bpb: float, spread: float, runs: int) -> None:
        with self._write() as conn:
            self._require(conn, "sessions", "id", session_id, "session")
            chain.insert(conn, "noise", {"session_id": session_id, "baseline_bpb": baseline_bpb,
                                         "spread": spread, "runs": runs,
                                         "created": time.time()})  # fmt: skip

    def add_experiment(self, record: ExperimentRecord) -> None:
        _check(record.kind, KINDS, "experiment kind")
        values = asdict(record)
        values["params_json"] = _dumps(values.pop("params"))
        with self._write() as conn:
            if conn.execute(
                "SELECT 1 FROM experiments WHERE number = ?", (record.number,)
            ).fetchone():
                raise LedgerError(f"experiment {record.number} already exists")
            chain.insert(conn, "experiments", {c: values[c] for c in _EXPERIMENT_COLUMNS})

    def add_result(self, number: int, record: ResultRecord) -> None:
        """Record how experiment `number` ended. Once: the ledger never rewrites a result."""
        _check(record.status, RESULT_STATUSES, "result status")
        values = asdict(record)
        values["flags_json"] = _dumps(values.pop("flags"))
        if values["score"] is None and record.status in SCORED_STATUSES:
            values["score"] = record.val_bpb
        elif record.status not in SCORED_STATUSES:
            values["score"] = None
        columns = ["number", *_RESULT_COLUMNS]
        values["number"] = number
        with self._write() as conn:
            self._require(conn, "experiments", "number", number, "experiment")
            existing = conn.execute(
                "SELECT status FROM results WHERE number = ?", (number,)
            ).fetchone()
            if existing:
                raise LedgerError(
                    f"experiment {number} already has a result ({existing[0]});"
                    " the ledger is append-only"
                )
            chain.insert(conn, "results", {c: values[c] for c in columns})

    def add_metrics(self, number: int, rows: list[dict]) -> None:
        """Batch-insert metric rows (a run's metrics.jsonl lines). Keys outside METRIC_KEYS are
        not stored; missing ones are NULL. SQLite stores a NaN loss as NULL."""
        if not rows:
            return
        with self._write() as conn:
            for row in rows:
                values = {"number": number, **{k: row.get(k) for k in METRIC_KEYS}}
                chain.insert(conn, "metrics", values)

    def add_event(
        self,
        kind: str,
        message: str,
        session_id: int | None = None,
        number: int | None = None,
        data: dict | None = None,
    ) -> int:
        return self.record_event(kind, message, session_id, number, data).id

    def record_event(
        self,
        kind: str,
        message: str,
        session_id: int | None = None,
        number: int | None = None,
        data: dict | None = None,
    ) -> EventRow:
        """Write one event; returns the row as written (what the loop hands its listeners)."""
        _check(kind, EVENT_KINDS, "event kind")
        row = {"time": time.time(), "session_id": session_id, "number": number, "kind": kind,
               "message": message, "data_json": _dumps(data)}  # fmt: skip
        with self._write() as conn:
            event_id = chain.insert(conn, "events", row)
        return EventRow(event_id, row["time"], session_id, number, kind, message,
                        _loads(row["data_json"]))  # fmt: skip

    @staticmethod
    def _require(conn, table: str, column: str, value, what: str) -> None:
        if not conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)).fetchone():
            raise LedgerError(f"no {what} {value} in the ledger")

    # --- reads --------------------------------------------------------------------------------

    def next_number(self) -> int:
        return self._read("SELECT COALESCE(MAX(number), 0) + 1 FROM experiments")[0][0]

    def experiments(
        self, session_id: int | None = None, session_ids: list[int] | None = None
    ) -> list[ExperimentView]:
        """All experiments, or those of one session, or of several (a branch's sessions)."""
        return self._experiments("TRUE", session_id, session_ids)

    def experiment(self, number: int) -> ExperimentView | None:
        rows = self._read(_EXPERIMENT_SELECT + " WHERE e.number = ?", (number,))
        return _experiment_view(rows[0]) if rows else None

    def unfinished(
        self, session_id: int | None = None, session_ids: list[int] | None = None
    ) -> list[ExperimentView]:
        """Experiments with no result yet: running now, or left behind by a killed loop."""
        return self._experiments("r.number IS NULL", session_id, session_ids)

    def _experiments(
        self, condition: str, session_id: int | None, session_ids: list[int] | None = None
    ) -> list[ExperimentView]:
        sql, params = f"{_EXPERIMENT_SELECT} WHERE {condition}", []
        if session_id is not None:
            sql += " AND e.session_id = ?"
            params.append(session_id)
        if session_ids is not None:
            sql += f" AND e.session_id IN ({', '.join('?' * len(session_ids))})"
            params.extend(session_ids)
        return [_experiment_view(r) for r in self._read(sql + " ORDER BY e.number", params)]

    def standings(self, tag: str | None = None):
        """The branch's numbers (reference, best, each Δ, the counts): see `track.standings`.
        `tag` names the branch; None is the latest session's."""
        from autolab.track.standings import read_standings

        return read_standings(self, tag)

    def sessions(self, tag: str | None = None) -> list[SessionView]:
        """All sessions, or those of one branch (`tag`), oldest first."""
        where, params = (" WHERE s.tag = ?", [tag]) if tag is not None else ("", [])
        rows = self._read(_SESSION_SELECT + where + " ORDER BY s.id", params)
        return [_session_view(r) for r in rows]

    def latest_session(self) -> SessionView | None:
        rows = self._read(_SESSION_SELECT + " ORDER BY s.id DESC LIMIT 1")
        return _session_view(rows[0]) if rows else None

    def events(
        self,
        after_id: int = 0,
        number: int | None = None,
        session_id: int | None = None,
        limit: int | None = None,
        last: int | None = None,
    ) -> list[EventRow]:
        """Events with id > after_id, oldest first. `limit` keeps the first N (for tailing in
        pages), `last` keeps the most recent N."""
        clauses, params = ["id > ?"], [after_id]
        if number is not None:
            clauses.append("number = ?")
            params.append(number)
        if session_id is not None:
            clauses.append("session_id = ?")
            params.append(session_id)
        sql = f"SELECT * FROM events WHERE {' AND '.join(clauses)}"
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?)"
            params.append(last)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            EventRow(
                r["id"],
                r["time"],
                r["session_id"],
                r["number"],
                r["kind"],
                r["message"],
                _loads(r["data_json"]),
            )
            for r in self._read(sql, params)
        ]

    def metrics(self, number: int) -> list[dict]:
        rows = self._read(
            f"SELECT {', '.join(METRIC_KEYS)} FROM metrics WHERE number = ? ORDER BY step, rowid",
            (number,),
        )
        return [dict(r) for r in rows]
