"""A research session seen as a hosted training job: its state, progress and standing.

The state (one vocabulary, `track.standings.SESSION_STATES`) is the latest session's; the
standing (reference, best, Δ, counts) is its branch's, across every session `--resume`
continued: both come from `track.standings`, as in every other view.
"""

import time
from dataclasses import asdict, dataclass, field

from autolab.hardware import distinct
from autolab.processes import process_alive
from autolab.research.policy import DEFAULT_BASELINE_RUNS
from autolab.track.confirmation import Confirmation
from autolab.track.ledger import ExperimentView, Ledger, SessionView
from autolab.track.standings import (
    LIVE_STATES,
    Counts,
    read_standings,
    session_pid,
    session_state,
)


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
    state: str  # one of track.standings.SESSION_STATES
    reason: str
    pid: int | None
    started: float
    ended: float | None  # the end row's time; for a killed session, its last event's
    elapsed_seconds: float
    remaining_seconds: float | None  # an estimate, when the session has hours or max_experiments
    running: RunningExperiment | None  # the latest one started (of `in_flight`)
    session_ids: list[int]  # the branch's sessions, this one last
    counts: Counts  # the branch's, from track.standings
    reference_bpb: float | None  # mean of the baseline runs
    noise_spread: float | None
    band: float | None  # the keep band
    best_bpb: float | None  # the best kept candidate's score, else the reference
    best_number: int | None  # None while nothing was kept
    best_description: str
    delta: float | None  # best_bpb - reference_bpb: negative is better
    confirmed: Confirmation | None = None  # the best re-run beside the reference
    config: dict = field(default_factory=dict)
    # The branch's experiments' hardware fingerprints (autolab.hardware), each once.
    hardware_fingerprints: list[dict] = field(default_factory=list)
    # How sure the spread is: its degrees of freedom, 95% chi-square interval, and the sessions
    # whose baseline runs it pools (track.standings.Reference).
    noise_dof: int | None = None
    noise_interval: tuple[float, float] | None = None
    noise_pooled_sessions: int | None = None
    reference_hardware: dict | None = None  # the fingerprint the reference was measured on
    in_flight: list[RunningExperiment] = field(default_factory=list)  # all running now

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts"]["failed"] = self.counts.failed
        return d


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


def runs_line(counts: Counts) -> str:
    """ "2 baseline runs, 1 re-check": the runs that are not candidates."""
    line = plural(counts.baseline_runs, "baseline run")
    line += f", {plural(counts.rechecks, 're-check')}" if counts.rechecks else ""
    return line + (f", {plural(counts.confirm_runs, 'confirm run')}" if counts.confirm_runs else "")


def counts_line(counts: Counts) -> str:
    """ "3 kept, 12 discarded, 1 crash": the candidates by verdict, in the ledger's order."""
    words = {"keep": "kept", "discard": "discarded", "crash": "crashed", "timeout": "timed out",
             "invalid": "invalid", "interrupted": "interrupted", "pruned": "pruned"}  # fmt: skip
    ordered = [f"{n} {words[s]}" for s, n in counts.by_status().items()]
    return ", ".join(ordered) or "none yet"


def session_over(ledger: Ledger, session_id: int, pid: int | None) -> bool:
    """Whether the session has an end row or its process `pid` is gone: what `events
    --follow` polls for. The pid is looked up once by the caller: reading it scans events."""
    ended = any(s.id == session_id and s.status is not None for s in ledger.sessions())
    return ended or (pid is not None and not process_alive(pid))


def session_status(
    ledger: Ledger,
    session: SessionView | None = None,
    now: float | None = None,
    stop_requested: bool = False,
) -> SessionStatus | None:
    """The latest session's status (or `session`'s); None when the ledger has no session."""
    session = session or ledger.latest_session()
    if session is None:
        return None
    now = time.time() if now is None else now
    state, reason = session_state(ledger, session, stop_requested)
    views = ledger.experiments(session.id)
    ended = session.ended
    if state == "killed":
        last = ledger.events(session_id=session.id, last=1)
        ended = last[0].time if last else session.started
    elapsed = (ended if ended is not None else now) - session.started
    in_flight = _in_flight(ledger, views) if state in LIVE_STATES else []
    running = in_flight[-1] if in_flight else None
    standings = read_standings(ledger, session.tag)
    ref = standings.reference
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
        if state in LIVE_STATES
        else None,
        running=running,
        in_flight=in_flight,
        session_ids=standings.session_ids,
        counts=standings.counts,
        reference_bpb=ref.bpb if ref else None,
        noise_spread=ref.spread if ref else None,
        band=ref.band if ref else None,
        best_bpb=standings.best_score,
        best_number=standings.best_number,
        best_description=standings.best_description,
        delta=standings.delta,
        confirmed=standings.confirmed,
        config=session.config,
        hardware_fingerprints=distinct(
            v.flags.get("hardware") for v in ledger.experiments(session_ids=standings.session_ids)
        ),
        noise_dof=ref.dof if ref else None,
        noise_interval=ref.interval if ref else None,
        noise_pooled_sessions=ref.pooled_sessions if ref else None,
        reference_hardware=ref.hardware if ref else None,
    )


def _in_flight(ledger: Ledger, views: list[ExperimentView]) -> list[RunningExperiment]:
    """Every experiment running now (several with `research --workers N`), oldest first."""
    return [_running(ledger, v) for v in views if v.status == "running"]


def _running(ledger: Ledger, view: ExperimentView) -> RunningExperiment:
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
        # None: 2 or 3 (research.policy), known once the history is; 2 is the smaller guess.
        runs = session.config.get("baseline_runs") or DEFAULT_BASELINE_RUNS
        baselines_left = max(0, int(runs) - baselines_done)
        to_run = max(0, limit - done) + baselines_left
        left = to_run * mean
        if running is not None:
            left -= min(mean, now - running.started)
        estimates.append(max(0.0, left))
    return min(estimates) if estimates else None
