"""A research session seen as a hosted training job: its state, progress and standing.

States, derived from the ledger alone (it is append-only, so nothing is ever marked):
- succeeded / failed / cancelled: the session's end row says so;
- running: no end row and the session's process is alive (`autolab.processes.process_alive`);
- queued: as running, but no experiment has been created yet;
- failed, "autolab was killed": no end row and the process is gone.
The pid is the one of the latest `session_started` event of the session (a resumed session runs
in a new process), else the session's config["pid"]. A session with no pid recorded counts as
alive: there is nothing to tell otherwise.
"""

import time
from dataclasses import asdict, dataclass, field

from autolab.processes import process_alive
from autolab.track.ledger import RESULT_STATUSES, ExperimentView, Ledger, SessionView

FAILED = ("crash", "timeout", "invalid")
KILLED = "autolab was killed"


@dataclass
class RunningExperiment:
    number: int
    description: str
    kind: str
    started: float
    progress: float | None = None
    step: int | None = None
    loss: float | None = None
    tokens_per_sec: float | None = None


@dataclass
class SessionStatus:
    session_id: int
    tag: str
    branch: str
    researcher: str
    hardware: str
    budget_seconds: float | None
    state: str  # queued | running | succeeded | failed | cancelled
    reason: str
    pid: int | None
    started: float
    ended: float | None  # the end row's time; for a killed session, its last event's
    elapsed_seconds: float
    remaining_seconds: float | None  # an estimate, when the session has hours or max_experiments
    running: RunningExperiment | None
    counts: dict[str, int]  # candidate experiments by status (running excluded)
    baseline_runs: int
    rechecks: int
    baseline_bpb: float | None
    noise_spread: float | None
    best_bpb: float | None
    best_number: int | None
    best_description: str
    gain: float | None  # baseline_bpb - best_bpb: positive is better
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def format_seconds(seconds: float) -> str:
    """4h05m, 12m30s, 42s."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def runs_line(status: "SessionStatus") -> str:
    """ "2 baseline runs, 1 re-check": the runs that are not candidates."""
    line = plural(status.baseline_runs, "baseline run")
    return line + (f", {plural(status.rechecks, 're-check')}" if status.rechecks else "")


def counts_line(counts: dict[str, int]) -> str:
    """ "3 keep, 12 discard, 1 crash", in the ledger's order of statuses."""
    ordered = [f"{counts[s]} {s}" for s in RESULT_STATUSES if counts.get(s)]
    return ", ".join(ordered) or "none yet"


def session_pid(ledger: Ledger, session: SessionView) -> int | None:
    started = [
        e
        for e in ledger.events(session_id=session.id)
        if e.kind == "session_started" and e.data.get("pid")
    ]
    if started:
        return int(started[-1].data["pid"])
    pid = session.config.get("pid")
    return int(pid) if pid else None


def session_state(ledger: Ledger, session: SessionView) -> tuple[str, str]:
    """(state, reason) of a session; see the module docstring."""
    if session.status is not None:
        return session.status, session.reason
    pid = session_pid(ledger, session)
    if pid is not None and not process_alive(pid):
        return "failed", KILLED
    if not ledger.experiments(session.id):
        return "queued", "waiting for the first experiment"
    return "running", ""


def session_over(ledger: Ledger, session_id: int, pid: int | None) -> bool:
    """Whether the session has an end row or its process `pid` is gone: what `events
    --follow` polls for. The pid is looked up once by the caller: reading it scans events."""
    ended = any(s.id == session_id and s.status is not None for s in ledger.sessions())
    return ended or (pid is not None and not process_alive(pid))


def score(view: ExperimentView) -> float | None:
    """The score the keep decision used: the mean over its re-check when it had one."""
    return view.flags.get("mean_bpb", view.val_bpb)


def best_experiment(views: list[ExperimentView]) -> ExperimentView | None:
    """The kept candidate with the lowest score, else the best baseline run."""
    kept = [v for v in views if v.status == "keep" and score(v) is not None]
    candidates = [v for v in kept if v.kind == "candidate"] or [
        v for v in kept if v.kind == "baseline"
    ]
    return min(candidates, key=lambda v: (score(v), v.number)) if candidates else None


def count_by_status(views: list[ExperimentView]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in views:
        if v.kind == "candidate" and v.status != "running":
            counts[v.status] = counts.get(v.status, 0) + 1
    return counts


def session_status(
    ledger: Ledger, session: SessionView | None = None, now: float | None = None
) -> SessionStatus | None:
    """The latest session's status (or `session`'s); None when the ledger has no session."""
    session = session or ledger.latest_session()
    if session is None:
        return None
    now = time.time() if now is None else now
    state, reason = session_state(ledger, session)
    views = ledger.experiments(session.id)
    ended = session.ended
    if state == "failed" and reason == KILLED:
        last = ledger.events(session_id=session.id, last=1)
        ended = last[0].time if last else session.started
    elapsed = (ended if ended is not None else now) - session.started
    running = _running(ledger, views) if state == "running" else None
    noise = session.noise
    best = best_experiment(views) if noise else None
    best_bpb = score(best) if best else None
    return SessionStatus(
        session_id=session.id,
        tag=session.tag,
        branch=session.branch,
        researcher=session.researcher,
        hardware=session.hardware,
        budget_seconds=session.budget_seconds,
        state=state,
        reason=reason,
        pid=session_pid(ledger, session),
        started=session.started,
        ended=ended,
        elapsed_seconds=elapsed,
        remaining_seconds=_remaining(session, views, now, running)
        if state in ("queued", "running")
        else None,
        running=running,
        counts=count_by_status(views),
        baseline_runs=sum(1 for v in views if v.kind == "baseline"),
        rechecks=sum(1 for v in views if v.kind == "recheck"),
        baseline_bpb=noise.baseline_bpb if noise else None,
        noise_spread=noise.spread if noise else None,
        best_bpb=best_bpb,
        best_number=best.number if best else None,
        best_description=best.description if best else "",
        gain=noise.baseline_bpb - best_bpb if noise and best_bpb is not None else None,
        config=session.config,
    )


def _running(ledger: Ledger, views: list[ExperimentView]) -> RunningExperiment | None:
    unfinished = [v for v in views if v.status == "running"]
    if not unfinished:
        return None
    view = unfinished[-1]
    metrics = ledger.metrics(view.number)
    last = metrics[-1] if metrics else {}
    return RunningExperiment(
        number=view.number,
        description=view.description,
        kind=view.kind,
        started=view.created,
        progress=last.get("progress"),
        step=last.get("step"),
        loss=last.get("loss"),
        tokens_per_sec=last.get("tokens_per_sec"),
    )


def _remaining(
    session: SessionView,
    views: list[ExperimentView],
    now: float,
    running: RunningExperiment | None,
) -> float | None:
    """Time left: to the `hours` limit, or the experiments still to run times the mean wall
    time of those done (baseline runs included); the smaller when both are set."""
    estimates = []
    hours = session.config.get("hours")
    if hours:
        estimates.append(max(0.0, session.started + hours * 3600 - now))
    limit = session.config.get("max_experiments")
    walls = [v.wall_seconds for v in views if v.wall_seconds is not None]
    if limit is not None and walls:
        mean = sum(walls) / len(walls)
        done = sum(1 for v in views if v.kind == "candidate" and v.status != "running")
        baselines_done = sum(1 for v in views if v.kind == "baseline" and v.status != "running")
        baselines_left = max(0, int(session.config.get("baseline_runs") or 0) - baselines_done)
        to_run = max(0, limit - done) + baselines_left
        left = to_run * mean
        if running is not None:
            left -= min(mean, now - running.started)
        estimates.append(max(0.0, left))
    return min(estimates) if estimates else None
