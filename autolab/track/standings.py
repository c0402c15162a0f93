"""A research branch's numbers, defined once beside the ledger they come from. Every view (the
loop, `results`, `status`, `events`, the dashboard, the report, the prompt, `--experiment best`)
asks here, so they all tell the same story.

A branch (`autolab/<tag>`) is one story however many sessions told it: `--resume` continues it
in a new session, and the standings cover them all.

- **score**: the number an experiment's verdict used, `results.score`: its sealed val_bpb, or
  the mean over its re-check when it had one. Only keep and discard have one.
- **reference**: the mean of the baseline runs, with their spread and the keep band (how much
  better one run must be to be kept outright). Baseline runs measure it; they are not
  improvements, even though the ledger records them as keep. The spread is pooled with the
  earlier sessions whose baseline ran the same commit, budget and hardware fingerprint
  (`noise_pool`); `dof` and `interval` say how sure it is, `hardware` what it was measured on.
- **one reference per hardware fingerprint**: scores are compared only within a fingerprint
  (autolab.hardware). A branch continued on other hardware (another machine, thread count or
  number of workers) measures that fingerprint's own reference on the branch's best before any
  candidate; `reference` is the latest one, the one candidates are judged against now.
- **best**: the kept candidate with the lowest score on the reference's fingerprint; the
  reference when none was kept there (`best_number` is None then).
- **Δ** (`delta`): score − its fingerprint's reference, negative = better, everywhere.
  `delta_best_before` is the score − the best on its fingerprint before the experiment (what its
  verdict was measured against).
- **running best** (the progress charts' line): each row's `best_after`, the best on its
  fingerprint once it ended, drawn as one line per fingerprint (`compared_within`): a best
  measured on one machine is never joined to another's.
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

import json
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
    dof: int = 0  # the spread's degrees of freedom: sum of (runs - 1) over the pooled sessions
    pooled_sessions: int = 1  # sessions whose baseline runs the spread pools, this one included
    interval: tuple[float, float] | None = None  # the spread's 95% chi-square interval
    hardware: dict | None = None  # the baseline runs' fingerprint: what candidates must match


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
    best_after: float | None = None  # the best once it ended: its score if it made a new best
    compared_within: str | None = None  # hardware_key of the fingerprint its score meets others


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
    pool = _branch_pool(ledger, views) if noise is not None else None
    return compute(views, noise, config, tag, ids, pool, _references(branch, views))


def _references(branch: list[SessionView], views: list[ExperimentView]) -> dict[str, float]:
    """Each fingerprint's latest reference (mean of its baseline runs) on the branch, by
    `hardware_key`. A session measures the one its scored baseline runs ran on; one with none
    of its own (a resume on the same hardware) carries the one before it."""
    references, last = {}, None
    for session in branch:
        own = [v for v in views if v.session_id == session.id and v.kind == "baseline"
               and v.status == "keep" and v.flags.get("hardware")]  # fmt: skip
        if own:
            last = hardware_key(own[-1].flags["hardware"])
        if session.noise is not None and last is not None:
            references[last] = session.noise.baseline_bpb
    return references


def hardware_key(hardware: dict | None) -> str | None:
    """A fingerprint as one comparable string (None: not recorded)."""
    return json.dumps(hardware, sort_keys=True) if hardware else None


@dataclass(frozen=True)
class Pool:
    """The baseline runs a reference's spread pools: (spread, runs) per session."""

    key: tuple  # (commit, budget seconds, fingerprint as JSON): what makes runs comparable
    groups: list[tuple[float, int]]

    @property
    def hardware(self) -> dict | None:
        return json.loads(self.key[2])


def pool_key(commit: str, budget: float | None, hardware: dict | None) -> tuple:
    return (commit, budget, json.dumps(hardware, sort_keys=True))  # hardware_key, never None


def baseline_scores(ledger: Ledger) -> dict[tuple[int, tuple], list[float]]:
    """Every session's scored baseline runs by (session id, pool key). Runs without a
    fingerprint (ledgers older than it) pool with nothing."""
    budgets = {s.id: s.budget_seconds for s in ledger.sessions()}
    groups: dict[tuple[int, tuple], list[float]] = {}
    for v in ledger.experiments():
        hardware = v.flags.get("hardware")
        if v.kind == "baseline" and v.status == "keep" and v.val_bpb is not None and hardware:
            key = pool_key(v.commit_sha, budgets.get(v.session_id), hardware)
            groups.setdefault((v.session_id, key), []).append(v.val_bpb)
    return groups


def noise_pool(ledger: Ledger, key: tuple, before: int, branch=()) -> list[tuple[float, int]]:
    """(spread, runs) of the baseline runs under `key` of each session with an id below
    `before` and not of `branch` (whose runs are the session's own): the history a session's
    spread pools with."""
    import statistics

    return [(statistics.stdev(scores), len(scores))
            for (sid, k), scores in sorted(baseline_scores(ledger).items(), key=lambda i: i[0][0])
            if k == key and sid < before and sid not in branch and len(scores) > 1]  # fmt: skip


def _branch_pool(ledger: Ledger, views: list[ExperimentView]) -> Pool | None:
    """The pool behind the branch's reference: the branch's baseline runs under its latest
    one's key, and the earlier sessions' of other branches under it (as the loop pooled)."""
    import statistics

    runs = [v for v in views if v.kind == "baseline" and v.status == "keep"
            and v.val_bpb is not None and v.flags.get("hardware")]  # fmt: skip
    if not runs:
        return None
    sid = runs[-1].session_id
    budget = next((s.budget_seconds for s in ledger.sessions() if s.id == sid), None)
    key = pool_key(runs[-1].commit_sha, budget, runs[-1].flags["hardware"])
    own = [v.val_bpb for v in runs
           if pool_key(v.commit_sha, budget, v.flags["hardware"]) == key]  # fmt: skip
    groups = noise_pool(ledger, key, sid, {v.session_id for v in views})
    if len(own) > 1:
        groups.append((statistics.stdev(own), len(own)))
    return Pool(key, groups)


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
    pool: Pool | None = None,
    references: dict[str, float] | None = None,
) -> Standings:
    """The standings of `views`. `references`: each fingerprint's reference by hardware_key;
    the current one (noise, measured on pool.hardware) is added to them."""
    reference = None
    if noise is not None:
        from autolab.research.policy import spread_interval

        # Without a pool (runs with no fingerprint, hand-written rows) the spread is its own.
        dof = sum(n - 1 for _, n in pool.groups) if pool else max(0, noise.runs - 1)
        reference = Reference(noise.baseline_bpb, noise.spread, noise.runs, band(noise, config),
                              dof, max(1, len(pool.groups)) if pool else 1,
                              spread_interval(noise.spread, dof),
                              pool.hardware if pool else None)  # fmt: skip
    ref_bpb = reference.bpb if reference else None
    current = hardware_key(reference.hardware) if reference else None
    # Scores meet only within a fingerprint: each run is measured against its own fingerprint's
    # reference and best. With the reference's fingerprint unknown (older ledgers) or the run's,
    # everything is one group, as before fingerprints.
    references = {**(references or {}), **({current: ref_bpb} if current else {})}

    def group(v: ExperimentView) -> str | None:
        own = hardware_key(v.flags.get("hardware"))
        return own if current and own else current

    counts, rows = Counts(), []
    bests: dict[str | None, float | None] = {current: ref_bpb}  # each group's best score
    best_views: dict[str | None, ExperimentView] = {}  # and the kept run that holds it
    for v in sorted(views, key=lambda v: v.number):
        score = v.score if v.status in SCORED_STATUSES else None
        key = group(v)
        best_before = bests.get(key, references.get(key))
        rows.append(
            Standing(
                number=v.number,
                kind=v.kind,
                status=v.status,
                score=score,
                delta=_minus(score, references.get(key, ref_bpb if key == current else None)),
                best_before=best_before,
                delta_best_before=_minus(score, best_before)
                if v.kind in (*IMPROVING_KINDS, "recheck")
                else None,
                rechecks=v.rechecks,
                compared_within=key,
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
        if is_improvement and (key not in best_views or score < best_before):
            bests[key], best_views[key] = score, v
        rows[-1].best_after = bests.get(key, references.get(key))
    best_score, best_view = bests[current], best_views.get(current)
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


@dataclass
class BestLine:
    """One step line of the running best: the rows compared within one fingerprint."""

    hardware: dict | None  # the fingerprint, None when runs carry none
    current: bool  # the reference's fingerprint: the one its keep band belongs to
    xs: list
    ys: list


def best_lines(standings: Standings, last_number: int) -> list[BestLine]:
    """The running best as step lines, one per run of rows compared within one fingerprint,
    each starting half a row before its first at the best before it and carried half a row
    past its last (the last line, to last_number). For a step drawn "post": at each row's
    number the line takes its best_after, so a keep sits on it."""
    ref = standings.reference
    current = hardware_key(ref.hardware) if ref else None
    lines: list[tuple[str | None, list, list]] = []
    for r in standings.rows:
        if r.best_after is None or r.kind == MANUAL:
            continue
        if not lines or lines[-1][0] != r.compared_within:
            start = r.best_before if r.best_before is not None else r.best_after
            lines.append((r.compared_within, [r.number - 0.5], [start]))
        lines[-1][1].append(r.number)
        lines[-1][2].append(r.best_after)
    for i, (_, xs, ys) in enumerate(lines):
        xs.append((last_number if i == len(lines) - 1 else xs[-1]) + 0.5)
        ys.append(ys[-1])
    return [BestLine(json.loads(key) if key else None, key == current, xs, ys)
            for key, xs, ys in lines]  # fmt: skip


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
