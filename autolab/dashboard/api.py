"""What the dashboard shows, as JSON-ready dicts built from the ledger (and the workspace's git
repository and run logs for diffs and log tails). No web framework here: `app` serves these.

Every method is blocking (SQLite, git, files) and is called from a worker thread. Reads are
single statements on the ledger's WAL connection, so they never hold a transaction open while
the research loop writes.
"""

import json
import math
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

from autolab import gitrepo, stop_request
from autolab.dashboard.mattered import mattered
from autolab.dashboard.params import ConstantsAt, params_table, parent_number
from autolab.dashboard.surprisal import SurprisalPanel, compare_choices, no_model_message
from autolab.hardware import label as fingerprint_label
from autolab.track.ledger import FAILED_STATUSES, ExperimentView, Ledger, SessionView, ledger_path
from autolab.track.standings import (
    LIVE_STATES,
    MANUAL,
    SESSION_STATES,
    Standings,
    band,
    best_lines,
    manual_noise,
    manual_standings,
    manual_views,
    read_standings,
)
from autolab.track.standings import compute as compute_standings
from autolab.track.standings import (
    session_state as standings_session_state,
)
from autolab.workspace import TRAIN_FILE, Workspace

ALERTS_KEPT = 20  # per session, for the banner
LOG_TAIL_BYTES = 64 * 1024
LOG_TAIL_LINES = 200
NUM_SAMPLES = 8


class Dashboard:
    """The dashboard's view of one workspace. Thread-safe; one per app.

    The ledger is opened once its file exists, so the dashboard can start before the first
    `autolab research` and fill in when it begins. Opening never creates the file.
    """

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.root = workspace.root
        self._lock = threading.Lock()
        self._ledger: Ledger | None = None
        # Scanned incrementally from the events table: each session's latest process id (a
        # resumed session has a new one) and its recent alerts.
        self._event_cursor = 0
        self._pids: dict[int, int] = {}
        self._alerts: dict[int, list[dict]] = {}
        self._samples: dict[int, dict] = {}
        self._sample_locks: dict[int, threading.Lock] = {}
        self._surprisal = SurprisalPanel(workspace)
        self._constants = ConstantsAt(self.root)

    # -- the ledger ----------------------------------------------------------------------------

    def ledger(self) -> Ledger | None:
        with self._lock:
            if self._ledger is None and ledger_path(self.root).is_file():
                self._ledger = Ledger.for_workspace(self.root)
            return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None

    def _scan_events(self, ledger: Ledger) -> None:
        with self._lock:
            for event in ledger.events(after_id=self._event_cursor):
                self._event_cursor = event.id
                if event.session_id is None:
                    continue
                if event.kind == "session_started" and event.data.get("pid"):
                    self._pids[event.session_id] = int(event.data["pid"])
                elif event.kind == "alert":
                    alerts = self._alerts.setdefault(event.session_id, [])
                    alerts.append(event.to_dict())
                    del alerts[:-ALERTS_KEPT]

    def resolve_session(self, ledger: Ledger, session_id: int | None) -> SessionView | None:
        if session_id is None:
            return ledger.latest_session()
        return next((s for s in ledger.sessions() if s.id == session_id), None)

    def session_state(self, session: SessionView) -> tuple[str, str]:
        """(state, reason), in track.standings' one vocabulary; the pid from the events scan."""
        pid = self._pids.get(session.id) or session.config.get("pid")
        return standings_session_state(
            self.ledger(), session, self.stop_requested(), int(pid) if pid else None
        )

    def stop_requested(self) -> str | None:
        """None, "after" (the running experiment is recorded first) or "now"."""
        return stop_request.requested(self.workspace.state_dir)

    # -- views ---------------------------------------------------------------------------------

    def overview(self, session_id: int | None = None) -> dict:
        base = {
            "workspace": self.root.name,
            "root": str(self.root),
            "ledger": False,
            "sessions": [],
            "session": None,
            "counts": {},
            "reference": None,
            "best": None,
            "delta": None,
            "confirmed": None,
            "session_ids": [],
            # The page's vocabularies come from here, never from a copy in app.js.
            "failed_statuses": list(FAILED_STATUSES),
            "session_states": list(SESSION_STATES),
            "running": None,
            "running_best": [],
            "in_flight": [],
            "alerts": [],
            "stop_requested": self.stop_requested(),
            "time": time.time(),
        }
        ledger = self.ledger()
        if ledger is None:
            return base
        self._scan_events(ledger)
        sessions = ledger.sessions()
        session = self.resolve_session(ledger, session_id)
        base["ledger"] = True
        base["manual"] = manual_overview(ledger)
        base["sessions"] = [
            {"id": s.id, "tag": s.tag, "branch": s.branch, "state": self.session_state(s)[0]}
            for s in sessions
        ]
        if session is None:
            return base
        state, reason = self.session_state(session)
        standings = read_standings(ledger, session.tag)
        views = ledger.experiments(session_ids=standings.session_ids)
        running = next((v for v in reversed(views) if v.status == "running"), None)
        base.update(
            session={
                **_clean(session.to_dict()),
                "state": state,
                "state_reason": reason,
                "pid": self._pids.get(session.id) or session.config.get("pid"),
            },
            alerts=list(self._alerts.get(session.id, [])),
            **standing_fields(standings, len(views)),
            running_best=running_best_lines(standings, max((v.number for v in views), default=0)),
        )
        if running is not None and state in LIVE_STATES:
            # Every experiment in flight (`research --workers N`), the latest as "running".
            base["in_flight"] = [
                {"number": view.number, "description": view.description,
                 "started": view.created,
                 **(_clean(last[0]) if (last := ledger.metrics(view.number)[-1:]) else {})}
                for view in views if view.status == "running"
            ]  # fmt: skip
            base["running"] = base["in_flight"][-1]
        return base

    def experiments(
        self, session_id: int | None = None, researcher: str | None = None
    ) -> list[dict]:
        """The session's experiments and, beside them, the person's manual runs (each with its
        own history's standing); `researcher` keeps only that researcher's."""
        ledger = self.ledger()
        if ledger is None:
            return []
        session = self.resolve_session(ledger, session_id)
        rows = []
        if session is not None:
            alive = self.session_state(session)[0] in LIVE_STATES
            standings = read_standings(ledger, session.tag)
            rows = experiment_rows(ledger.experiments(session_ids=standings.session_ids),
                                   standings, alive)  # fmt: skip
        rows += experiment_rows(manual_views(ledger), manual_standings(ledger), True)
        rows.sort(key=lambda row: row["number"])
        return [r for r in rows if researcher is None or r["researcher"] == researcher]

    def experiment(self, number: int) -> dict | None:
        """One experiment with all the page shows: verdict, diff, log tail, events."""
        ledger = self.ledger()
        view = ledger.experiment(number) if ledger else None
        if view is None:
            return None
        session = self.resolve_session(ledger, view.session_id) if view.session_id else None
        alive = session is not None and self.session_state(session)[0] in LIVE_STATES
        if view.session_id is None and view.researcher == MANUAL:
            alive, standings = True, manual_standings(ledger)
        else:
            standings = read_standings(ledger, session.tag if session else None)
        row = experiment_rows([view], standings, alive)[0]
        run_dir = self.workspace.runs_dir / str(number)
        row.update(
            base_commit=session.config.get("base_commit", "") if session else "",
            diff=self.diff(view, session),
            log=log_tail(run_dir / "run.log"),
            log_path=str(run_dir / "run.log"),
            has_model=(run_dir / "model.pt2").is_file(),
            events=[e.to_dict() for e in ledger.events(number=number, last=100)],
        )
        row["compare"] = compare_choices(ledger, view, self.workspace.runs_dir)
        row.update(self.params(ledger, view))
        if view.kind == MANUAL:
            row["diffs"] = self.manual_diffs(ledger, view)
        return row

    def manual_diffs(self, ledger: Ledger, view: ExperimentView) -> list[dict]:
        """A manual run's train.py against the person's previous run and against the best."""
        from autolab.errors import UsageError
        from autolab.manual.select import pick

        diffs = []
        earlier = [v for v in manual_views(ledger) if v.kind == MANUAL and v.number < view.number]
        if earlier:
            diffs.append((f"against your previous run #{earlier[-1].number}", earlier[-1]))
        try:
            best = pick(ledger, "best")
        except UsageError:
            best = None
        if best is not None and best.number != view.number:
            diffs.append((f"against the best #{best.number}", best))
        out = []
        for label, other in diffs:
            diff = self._train_py_diff(other.commit_sha, view.commit_sha)
            out.append({"label": label, "number": other.number, **diff})
        return out

    def _train_py_diff(self, old: str, new: str) -> dict:
        try:
            text = gitrepo.git(self.root, "diff", "--no-color", old, new, "--", TRAIN_FILE)
        except gitrepo.GitError as err:
            return {"text": "", "note": f"the diff is not available: {err}"}
        return {"text": text, "note": "" if text else "no change to train.py"}

    def params(self, ledger: Ledger, view: ExperimentView) -> dict:
        """The params table (train.py's constants at the commit against the parent's) and the
        parent experiment's number, when an earlier experiment made that commit."""
        parent = None if view.kind == "baseline" else self._constants(view.parent_commit)
        number = parent_number(view, ledger.experiments()) if parent is not None else None
        return {
            "params_table": params_table(self._constants(view.commit_sha), parent),
            "parent_number": number,
        }

    def mattered(self, session_id: int | None = None) -> dict:
        """The what-mattered view of the session's branch (`dashboard.mattered`)."""
        ledger = self.ledger()
        session = self.resolve_session(ledger, session_id) if ledger else None
        if session is None:
            return mattered([], compute_standings([], None, {}), self._constants)
        standings = read_standings(ledger, session.tag)
        views = ledger.experiments(session_ids=standings.session_ids)
        return mattered(views, standings, self._constants)

    def diff(self, view: ExperimentView, session: SessionView | None) -> dict:
        """The experiment's change to train.py against its parent, from the preserved commits."""
        if view.kind == "confirm":
            return {"text": "", "note": f"a confirm run: commit {view.commit_sha[:7]} again"}
        if view.kind == "baseline" or not view.parent_commit:
            base = session.config.get("base_commit", "") if session else ""
            return {
                "text": "",
                "note": f"a baseline run of the session's starting commit {base[:7]}: no change",
            }
        try:
            text = gitrepo.git(
                self.root, "diff", "--no-color", view.parent_commit, view.commit_sha,
                "--", TRAIN_FILE,
            )  # fmt: skip
        except gitrepo.GitError as err:
            return {"text": "", "note": f"the diff is not available: {err}"}
        return {"text": text, "note": "" if text else "no change to train.py"}

    def metrics(self, number: int) -> list[dict]:
        ledger = self.ledger()
        return [_clean(r) for r in ledger.metrics(number)] if ledger else []

    def events(self, after_id: int = 0, last: int | None = None, session_id=None) -> list[dict]:
        ledger = self.ledger()
        if ledger is None:
            return []
        rows = ledger.events(after_id=after_id, last=last, session_id=session_id)
        return [_clean(e.to_dict()) for e in rows]

    def request_stop(self, now: bool = False) -> Path:
        """The request `autolab stop` (or `autolab stop --now`) makes."""
        when = stop_request.NOW if now else stop_request.AFTER
        return stop_request.request_stop(self.workspace.state_dir, when, "the dashboard")

    # -- samples -------------------------------------------------------------------------------

    def samples(self, number: int) -> dict:
        """Text sampled from the experiment's handed-over model; computed once per experiment.
        Loads torch on first use, so it runs in a worker thread, one at a time per experiment."""
        with self._lock:
            if number in self._samples:
                return self._samples[number]
            lock = self._sample_locks.setdefault(number, threading.Lock())
        with lock:
            with self._lock:
                if number in self._samples:
                    return self._samples[number]
            result = self._sample(number)
            if result.get("final"):
                with self._lock:
                    self._samples[number] = result
            return result

    def _sample(self, number: int) -> dict:
        ledger = self.ledger()
        view = ledger.experiment(number) if ledger else None
        if view is None:
            return {"samples": [], "message": f"no experiment {number}", "final": False}
        run_dir = self.workspace.runs_dir / str(number)
        if not (run_dir / "model.pt2").is_file():
            final = view.status != "running"
            return {"samples": [], "message": no_model_message(view), "final": final}
        from autolab.sampling import sample_texts
        from autolab.workspace import prepare_data

        started = time.time()
        texts = sample_texts(run_dir, prepare_data(self.workspace).data_dir, NUM_SAMPLES)
        return {
            "samples": texts,
            "message": "" if texts else f"exp {number}'s model could not be loaded",
            "seconds": round(time.time() - started, 2),
            "final": True,
        }

    # -- surprisal -----------------------------------------------------------------------------

    def surprisal(self, number: int, text: str | None = None, compare: int | None = None) -> dict:
        """Per-token loss of `text` (None: the start of the dev split) under the experiment's
        model, and against experiment `compare`; a `surprisal.RequestError` when it cannot be."""
        return self._surprisal.score(self.ledger(), number, text, compare)


def manual_overview(ledger: Ledger) -> dict | None:
    """The person's manual runs for the header and the chart: their best and noise band."""
    st = manual_standings(ledger)
    if not st.rows:
        return None
    noise = manual_noise(ledger)
    return {
        "runs": len(st.rows),
        "best": None if st.best_number is None else {"number": st.best_number,
                                                     "score": st.best_score},
        "band": band(noise[0], {}) if noise else None,
    }  # fmt: skip


def standing_fields(standings: Standings, total: int) -> dict:
    """The header's numbers, from the branch's standings (`track.standings`)."""
    ref = standings.reference
    counts = {**_clean(standings.to_dict()["counts"]), "total": total}
    best = None
    if standings.best_score is not None:
        best = {"number": standings.best_number, "score": standings.best_score,
                "description": standings.best_description,
                "is_reference": standings.best_number is None}  # fmt: skip
    reference = None
    if ref is not None:  # with the fingerprint it was measured on, as every view words it
        hardware = fingerprint_label(ref.hardware) if ref.hardware else ""
        reference = {**_clean(vars(ref)), "fingerprint": hardware}
    return {
        "reference": reference,
        "best": best,
        "delta": standings.delta,
        "confirmed": _clean(asdict(standings.confirmed)) if standings.confirmed else None,
        "counts": counts,
        "session_ids": standings.session_ids,
    }


def running_best_lines(standings: Standings, last_number: int) -> list[dict]:
    """The chart's running best, one step line per fingerprint (`track.standings.best_lines`):
    `current` marks the one the reference (and its keep band) belongs to."""
    if standings.reference is None:
        return []
    return [
        {"x": line.xs, "y": line.ys, "current": line.current,
         "fingerprint": fingerprint_label(line.hardware) if line.hardware else ""}
        for line in best_lines(standings, last_number)
    ]  # fmt: skip


def experiment_rows(
    views: list[ExperimentView], standings: Standings, session_alive: bool
) -> list[dict]:
    """Experiments as table rows: the ledger's fields plus their standing (score, Δ against the
    reference and against the best before each), and "running" shown as "interrupted" once the
    session's process is gone (what `--resume` will record)."""
    rows = []
    for view in views:
        row = _clean(view.to_dict())
        standing = standings.row(view.number)
        row.update(
            delta=standing.delta if standing else None,
            best_before=standing.best_before if standing else None,
            delta_best_before=standing.delta_best_before if standing else None,
            is_best=bool(standing and standing.is_best),
            confirms=standing.confirms if standing else None,
        )
        row["score"] = standing.score if standing else None
        row["seconds"] = view.wall_seconds if view.wall_seconds is not None else view.total_seconds
        row["shown_status"] = view.status
        # What its score was measured on, as every view words it (autolab.hardware.label).
        hardware = view.flags.get("hardware")
        row["fingerprint"] = fingerprint_label(hardware) if hardware else ""
        if view.status == "running" and not session_alive:
            row["shown_status"] = "interrupted"
        rows.append(_clean(row))
    return rows


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, reading only its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > LOG_TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return "\n".join(text.splitlines()[-lines:])


def _clean(value):
    """JSON has no NaN or infinity: they become null (a NaN loss is a gap in a curve)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Follower:
    """One stream client's place in the ledger: each `tick` returns what is new since the last,
    or None. The first tick (and the first after the followed session changes) is a full
    snapshot marked `reset`.

    Metric rows are sent per experiment as `{start, rows}` slices. An experiment is watched
    while it runs and read once more after it is seen finished: its last rows land before its
    result, so that read has them all.
    """

    def __init__(self, dashboard: Dashboard, session_id: int | None = None):
        self.dashboard = dashboard
        self.fixed_session = session_id
        self.session_id: int | None = None
        self.last_event = 0
        self.sent: dict[int, int] = {}  # experiment -> metric rows sent
        self.watched: set[int] = set()
        self.overview_key = ""
        self.started = False

    def tick(self) -> dict | None:
        dash = self.dashboard
        overview = dash.overview(self.fixed_session)
        ledger = dash.ledger()
        session = overview["session"]
        session_id = session["id"] if session else None
        if not self.started or session_id != self.session_id:
            self.started, self.session_id = True, session_id
            return self._snapshot(ledger, overview)
        update: dict = {}
        key = _overview_key(overview)
        if key != self.overview_key:
            self.overview_key = key
            update["overview"] = overview
        if ledger is None:
            return update or None
        # Which experiments run is read before their metrics: see the class docstring.
        running = {v.number for v in ledger.unfinished() if v.session_id in (session_id, None)}
        metrics = {}
        for number in sorted(self.watched | running):
            rows = self._new_metrics(ledger, number)
            if rows:
                metrics[number] = rows
        self.watched = running
        events = ledger.events(after_id=self.last_event)
        if events:
            self.last_event = events[-1].id
        # The session's events and the manual runs' (which belong to no session).
        events = [e for e in events if e.session_id in (session_id, None)]
        if events:
            update["events"] = [_clean(e.to_dict()) for e in events]
        if metrics:
            update["metrics"] = metrics
        if events or "overview" in update:
            update["experiments"] = dash.experiments(session_id)
        return update or None

    def _snapshot(self, ledger: Ledger | None, overview: dict) -> dict:
        self.overview_key = _overview_key(overview)
        self.sent, self.watched = {}, set()
        snapshot = {"reset": True, "overview": overview, "experiments": [], "events": [],
                    "metrics": {}}  # fmt: skip
        if ledger is None:
            return snapshot
        # The cursor first: an event landing meanwhile is sent twice (the page skips repeats
        # by id) rather than never.
        latest = ledger.events(last=1)
        self.last_event = latest[-1].id if latest else 0
        views = [v for v in ledger.experiments() if v.session_id in (self.session_id, None)]
        self.watched = {v.number for v in views if v.status == "running"}
        snapshot["experiments"] = self.dashboard.experiments(self.session_id)
        events = [e for e in ledger.events(last=400) if e.session_id in (self.session_id, None)]
        snapshot["events"] = [_clean(e.to_dict()) for e in events[-200:]]
        if views:  # the live curve: the running experiment, or else the last one
            live = views[-1].number
            for number in sorted(self.watched | {live}):
                snapshot["metrics"][number] = self._new_metrics(ledger, number)
        return snapshot

    def _new_metrics(self, ledger: Ledger, number: int) -> dict | None:
        rows = ledger.metrics(number)
        start = self.sent.get(number, 0)
        self.sent[number] = len(rows)
        if len(rows) <= start:
            return None
        return {"start": start, "rows": [_clean(r) for r in rows[start:]]}


def _overview_key(overview: dict) -> str:
    return json.dumps({k: v for k, v in overview.items() if k != "time"}, sort_keys=True)
