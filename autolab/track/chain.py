"""How the ledger sees a change made outside autolab: a hash chain over its rows, and the list
of the objects it may hold.

Every row autolab inserts carries `chain = "<seq>:<sha256>"`: its place in one chain across all
tables (in the order the rows were written) and the hash of the previous link with the row's
own values. The hash is taken from the row as SQLite stored it, read back in the inserting
transaction, so type affinity (12.0 stored as 12, a NaN stored as NULL) cannot make an honest
row look edited. `ledger_meta` holds the chain's head, so deleting the last row shows too.
Rows written before a ledger had chains (schema v1) are not covered: the chain starts at the
migration, and `ledger_meta` records how many rows each table had then.

What this catches: a row edited, deleted or inserted by anything that does not keep the chain
(the sqlite3 shell, a script, a hostile train.py), and triggers, views, indexes or tables added
to the file. What it does not: a writer who recomputes the chain with this code. The sandbox,
which gives experiments no view of the ledger at all, is the protection against that.
"""

import hashlib
import sqlite3

CHAINED_TABLES = ("sessions", "session_ends", "noise", "experiments", "results", "metrics",
                  "events")  # fmt: skip
META_TABLE = "ledger_meta"
# Columns added after the chain began (schema v3): they enter a row's hash only when set, so a
# row written before they existed keeps its hash, and setting one on such a row still shows.
LATE_COLUMNS = frozenset({("metrics", "tokens"), ("metrics", "dev_loss")})


class ChainBroken(Exception):
    """The ledger's rows do not match their chain: something changed it outside autolab."""


def link(previous: str, seq: int, table: str, row: sqlite3.Row) -> str:
    values = tuple(
        row[k]
        for k in row.keys()
        if k not in ("chain", "rowid_") and not ((table, k) in LATE_COLUMNS and row[k] is None)
    )
    text = f"{previous}\x1f{seq}\x1f{table}\x1f{row['rowid_']}\x1f{values!r}"
    return f"{seq}:{hashlib.sha256(text.encode()).hexdigest()}"


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _set_meta(conn: sqlite3.Connection, key: str, value) -> None:
    conn.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


def start(conn: sqlite3.Connection) -> None:
    """Begin the chain (a new ledger, or one migrated from v1): the rows already there are
    legacy, not covered. Called inside the migration's transaction."""
    for table in CHAINED_TABLES:
        last = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
        _set_meta(conn, f"legacy:{table}", last)
    _set_meta(conn, "head", "")


def insert(conn: sqlite3.Connection, table: str, values: dict) -> int:
    """Insert one row and chain it; returns its rowid. Inside the caller's write transaction."""
    columns = list(values)
    cur = conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [values[c] for c in columns],
    )
    rowid = cur.lastrowid
    head = _meta(conn, "head") or ""
    seq = int(head.split(":")[0]) + 1 if head else 1
    row = conn.execute(f"SELECT rowid AS rowid_, * FROM {table} WHERE rowid = ?", (rowid,))
    chain = link(head, seq, table, row.fetchone())
    conn.execute(f"UPDATE {table} SET chain = ? WHERE rowid = ?", (chain, rowid))
    _set_meta(conn, "head", chain)
    return rowid


def verify(conn: sqlite3.Connection) -> list[str]:
    """What does not match the chain, one line each (empty when the ledger is intact)."""
    problems, links = [], []
    for table in CHAINED_TABLES:
        legacy = int(_meta(conn, f"legacy:{table}") or 0)
        for row in conn.execute(f"SELECT rowid AS rowid_, * FROM {table}"):
            if row["chain"] is None:
                if row["rowid_"] > legacy:
                    problems.append(f"{_name(table, row)} was inserted outside autolab")
                continue
            seq, _, _ = row["chain"].partition(":")
            if not seq.isdigit():
                problems.append(f"{_name(table, row)} has a malformed chain value")
                continue
            links.append((int(seq), table, row))
    links.sort(key=lambda t: t[0])
    previous, previous_seq = "", 0
    for seq, table, row in links:
        if seq != previous_seq + 1:
            problems.append(f"rows written before {_name(table, row)} were deleted")
        elif link(previous, seq, table, row) != row["chain"]:
            problems.append(f"{_name(table, row)} was edited after autolab wrote it")
        previous, previous_seq = row["chain"], seq
    if previous != (_meta(conn, "head") or ""):
        problems.append("the last rows autolab wrote were deleted")
    return problems


def _name(table: str, row: sqlite3.Row) -> str:
    """How a row is named in a warning: "results row 7 (experiment 7)"."""
    keys = row.keys()
    if table in ("experiments", "results") and "number" in keys:
        return f"{table} row of experiment {row['number']}"
    if table == "metrics":
        return f"metrics row {row['rowid_']} (experiment {row['number']})"
    return f"{table} row {row['rowid_']}"


def foreign_objects(conn: sqlite3.Connection, known: set[tuple[str, str]]) -> list[str]:
    """Objects in the file that autolab did not create: "trigger t_keep", "table notes"."""
    found = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    return [
        f"{kind} {name}"
        for kind, name in found
        if (kind, name) not in known
        and not name.startswith("sqlite_autoindex_")
        and name != "sqlite_sequence"
    ]
