"""A research branch's numbers, defined once beside the ledger they come from. Every view (the
loop, `results`, `status`, `events`, the dashboard, the report, the prompt, `--experiment best`)
asks here, so they all tell the same story.

A branch (`autolab/<tag>`) is one story however many sessions told it: `--resume` continues it
in a new session, and the standings cover them all.

- **score**: the number an experiment's verdict used, `results.score`: its sealed val_bpb, or
  the mean over its re-check when it had one. Only keep and discard have one.
- **reference**: the mean of the baseline runs, with their spread and the keep band (how much
  better one run must be to be kept outright). Baseline runs measure it; they are not
  improvements, even though the ledger records them as keep.
- **best**: the kept candidate with the lowest score; the reference when nothing was kept
  (`best_number` is None then).
- **Δ** (`delta`): score − reference, negative = better, everywhere. `delta_best_before` is the
  score − the best before the experiment (what its verdict was measured against).
- **counts**: candidates by verdict, and the runs that are not candidates (baseline runs,
  re-checks, confirm runs) as what they are.
- **confirmed**: the best and the reference re-run side by side after the search, with the
  95% interval of their difference (`track.confirmation`); None until that was done.
- **session state**: one vocabulary, SESSION_STATES.
- **manual runs**: every `autolab train` a person runs is an experiment of kind `manual`
  (researcher `manual`) in no session: one history per workspace, MANUAL_HISTORY, with its own
  best and no reference (Δ prev only). Its noise band is the spread of the latest
  `autolab train --repeat N`. Research branches never count them.
"""

from dataclasses import asdict, dataclass, field

from autolab.processes import process_alive
from autolab.track.confirmation import Confirmation, confirmation_of, sides
from autolab.track.ledger import (
    FAILED_STATUSES,
    RESULT_STATUSES,
    SCORED_STATUSES,
    ExperimentView,
    Ledger,
    NoiseRow,
    SessionView,
)

# queued: no experiment yet; stopping: a stop was asked for, the loop ends after recording;
# killed: no end row and the process is gone (`autolab research --resume` continues it).
SESSION_STATES = ("queued", "running", "stopping", "succeeded", "failed", "cancelled", "killed")
LIVE_STATES = ("queued", "running", "stopping")
KILLED_REASON = "the research process is gone: `autolab research --resume` continues it"
MANUAL = "manual"  # the researcher (and kind) of a person's `autolab train` runs
MANUAL_HISTORY = "manual runs"  # their history's tag: no git branch can be named so
IMPROVING_KINDS = ("candidate", MANUAL)  # the kinds a keep can make the best


@dataclass(frozen=True)
class Reference:
    bpb: float  # mean of the baseline runs
    spread: float  # their sample standard deviation
    runs: int
    band: float  # a single run must beat the best by more than this to be kept outright


@dataclass
class Standing:
    """One experiment's place in the story."""

    number: int
    kind: str  # baseline | candidate | recheck | confirm
    status: str
    score: float | None  # None unless keep or discard
    delta: float | None  # score - reference: negative is better
    best_before: float | None  # the best score when it ran (the reference before any keep)
    delta_best_before: float | None  # score - best_before
    rechecks: int | None  # the candidate a re-check re-ran
    is_best: bool = False
    confirms: str | None = None  # a confirm run's recipe: reference | best | earlier best


@dataclass
class Counts:
    kept: int = 0  # kept improvements: candidates only
    discarded: int = 0
    crashed: int = 0
    timed_out: int = 0
    invalid: int = 0
    interrupted: int = 0
    pruned: int = 0  # stopped early by --prune: neither scored nor failed
    running: int = 0  # of every kind
    rechecks: int = 0  # re-check runs, whatever they ended
    baseline_runs: int = 0
    confirm_runs: int = 0  # whatever they ended

    @property
    def failed(self) -> int:
        return self.crashed + self.timed_out + self.invalid

    def by_status(self) -> dict[str, int]:
        """Candidates by verdict, in the ledger's order of statuses, zeros left out."""
        values = dict(zip(RESULT_STATUSES, (self.kept, self.discarded, self.crashed,
                                            self.timed_out, self.invalid, self.interrupted,
                                            self.pruned),
                          strict=True))  # fmt: skip
        return {k: v for k, v in values.items() if v}


_COUNTED = {"keep": "kept", "discard": "discarded", "crash": "crashed", "timeout": "timed_out",
            "invalid": "invalid", "interrupted": "interrupted", "pruned": "pruned"}  # fmt: skip


@dataclass
class Standings:
    tag: str | None
    session_ids: list[int]
    reference: Reference | None
    best_number: int | None  # None: nothing was kept, the best is the reference
    best_score: float | None  # the best's score, or the reference's
    best_description: str
    delta: float | None  # best_score - reference: negative is better
    counts: Counts
    rows: list[Standing] = field(default_factory=list)
    confirmed: Confirmation | None = None  # the best re-run beside the reference

    def row(self, number: int) -> Standing | None:
        return next((r for r in self.rows if r.number == number), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts"]["failed"] = self.counts.failed
        return d


def read_standings(ledger: Ledger, tag: str | None = None) -> Standings:
    """The standings of branch `tag` (None: the latest session's) from the ledger."""
    sessions = ledger.sessions()
    if tag is None and sessions:
        tag = sessions[-1].tag
    branch = [s for s in sessions if s.tag == tag]
    # A session that continues none (no "continues" in its config) starts the branch afresh: a
    # tag used again after its branch was deleted is a new story.
    starts = [i for i, s in enumerate(branch) if "continues" not in s.config]
    branch = branch[starts[-1] :] if starts else branch
    ids = [s.id for s in branch]
    measured = [s for s in branch if s.noise is not None]
    noise = measured[-1].noise if measured else None
    config = branch[-1].config if branch else {}
    views = ledger.experiments(session_ids=ids) if ids else []
    return compute(views, noise, config, tag, ids)


def band(noise: NoiseRow, config: dict) -> float:
    """The keep band the session decided with; the formula is the policy's."""
    from autolab.research.policy import Noise, Policy

    policy = Policy(**{k: config[k] for k in ("k", "min_delta", "greedy") if k in config})
    return policy.band(Noise(noise.baseline_bpb, noise.spread, noise.runs))


def compute(
    views: list[ExperimentView],
    noise: NoiseRow | None,
    config: dict,
    tag: str | None = None,
    session_ids: list[int] | None = None,
) -> Standings:
    reference = None
    if noise is not None:
        reference = Reference(noise.baseline_bpb, noise.spread, noise.runs, band(noise, config))
    ref_bpb = reference.bpb if reference else None
    counts, rows = Counts(), []
    best_score, best_view = ref_bpb, None
    for v in sorted(views, key=lambda v: v.number):
        score = v.score if v.status in SCORED_STATUSES else None
        rows.append(
            Standing(
                number=v.number,
                kind=v.kind,
                status=v.status,
                score=score,
                delta=_minus(score, ref_bpb),
                best_before=best_score,
                delta_best_before=_minus(score, best_score)
                if v.kind in (*IMPROVING_KINDS, "recheck")
                else None,
                rechecks=v.rechecks,
            )  # fmt: skip
        )
        if v.status == "running":
            counts.running += 1
        elif v.kind == "baseline":
            counts.baseline_runs += 1
        elif v.kind == "recheck":
            counts.rechecks += 1
        elif v.kind == "confirm":
            counts.confirm_runs += 1
        else:
            name = _COUNTED[v.status]
            setattr(counts, name, getattr(counts, name) + 1)
        is_improvement = v.kind in IMPROVING_KINDS and v.status == "keep" and score is not None
        if is_improvement and (best_score is None or best_view is None or score < best_score):
            best_score, best_view = score, v
    if best_view is not None:
        next(r for r in rows if r.number == best_view.number).is_best = True
    for number, recipe in sides(views, best_view).items():
        next(r for r in rows if r.number == number).confirms = recipe
    return Standings(
        tag=tag,
        session_ids=list(session_ids or sorted({v.session_id for v in views if v.session_id})),
        reference=reference,
        best_number=best_view.number if best_view else None,
        best_score=best_score,
        best_description=best_view.description if best_view else "",
        delta=_minus(best_score, ref_bpb),
        counts=counts,
        rows=rows,
        confirmed=confirmation_of(views, best_view, _minus(best_score, ref_bpb)),
    )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def failed(status: str) -> bool:
    return status in FAILED_STATUSES


# --- the session's state ------------------------------------------------------------------------


def session_pid(ledger: Ledger, session: SessionView) -> int | None:
    """The pid of the session's latest `session_started` event (a resumed session runs in a
    new process), else its config["pid"]."""
    started = [
        e
        for e in ledger.events(session_id=session.id)
        if e.kind == "session_started" and e.data.get("pid")
    ]
    if started:
        return int(started[-1].data["pid"])
    pid = session.config.get("pid")
    return int(pid) if pid else None


def session_state(
    ledger: Ledger, session: SessionView, stop_requested: bool = False, pid: int | None = None
) -> tuple[str, str]:
    """(state, reason), a state of SESSION_STATES. A session with no pid recorded counts as
    alive: there is nothing to tell otherwise. `pid` saves the events scan when known."""
    if session.status is not None:
        return session.status, session.reason
    pid = pid if pid is not None else session_pid(ledger, session)
    if pid is not None and not process_alive(pid):
        return "killed", KILLED_REASON
    if stop_requested:
        return "stopping", "a stop was requested: the loop ends after recording"
    if not ledger.experiments(session.id):
        return "queued", "waiting for the first experiment"
    return "running", ""


def every_branch(ledger: Ledger) -> dict[str | None, Standings]:
    """The standings of every branch in the ledger, by tag, oldest first."""
    tags = list(dict.fromkeys(s.tag for s in ledger.sessions()))
    branches = {tag: read_standings(ledger, tag) for tag in tags}
    covered = {number for st in branches.values() for number in (r.number for r in st.rows)}
    manual = manual_standings(ledger)
    if manual.rows:
        branches[MANUAL_HISTORY] = manual
        covered |= {r.number for r in manual.rows}
    orphans = [v for v in ledger.experiments() if v.number not in covered]
    if orphans:  # rows of no session (written by hand): scores, but no reference to measure by
        branches.setdefault(None, compute(orphans, None, {}))
    return branches


def manual_views(ledger: Ledger) -> list[ExperimentView]:
    """The person's `autolab train` runs and their `--repeat` runs, oldest first."""
    return [v for v in ledger.experiments() if v.session_id is None and v.researcher == MANUAL]


def manual_standings(ledger: Ledger) -> Standings:
    """The manual history's numbers: its best is the person's best; no reference."""
    return compute(manual_views(ledger), None, {}, MANUAL_HISTORY, [])


def manual_noise(ledger: Ledger) -> tuple[NoiseRow, int] | None:
    """The latest noise a `--repeat` measured, and the experiment it measured; None before."""
    for v in reversed(manual_views(ledger)):
        noise = v.flags.get("noise")
        if v.kind == MANUAL and noise:
            return NoiseRow(noise["mean"], noise["spread"], noise["runs"], v.finished), v.number
    return None


def by_number(branches: dict[str | None, Standings]) -> dict[int, Standing]:
    return {row.number: row for st in branches.values() for row in st.rows}
