"""Confirm a branch's best: re-run the reference and the best recipe side by side.

A confirmation is a session of its own on the research branch (researcher "confirm",
continuing the latest session, as `--resume` does), so every view shows it as what it is and a
stop, a Ctrl-C or a kill leaves the ledger as any session's would. It runs the reference recipe
(the commit the baseline runs measured) and the best kept recipe K times each, interleaved
(reference, best, reference, best, ...) so that a machine getting slower or faster touches both
alike, each with a fresh seed, through the same sealed path as every experiment
(`run_experiment` in the session's Workers, the same integrity checks). Each run is an
experiment of kind `confirm`: recorded as keep when it scored, never a kept improvement, never
the best. `track.confirmation` turns them into the confirmed gain.

Nothing here touches git: each recipe's train.py is read from its commit and written to the
run's own folder under .autolab/confirm/, so the workspace stays as it is.
"""

import os
import sqlite3
from dataclasses import asdict, dataclass

from autolab import gitrepo, stop_request
from autolab.errors import UsageError
from autolab.research.recorder import Recorder, result_record
from autolab.research.trial import Runner, Trial, session_must_end
from autolab.sandbox.availability import choose_isolation
from autolab.track.confirmation import DEFAULT_K, confirmation_text
from autolab.track.ledger import ExperimentRecord, Ledger, LedgerError, ResultRecord
from autolab.track.standings import LIVE_STATES, Standings, read_standings, session_state
from autolab.workspace import TRAIN_FILE, Workspace

SEED_OFFSET = 1_000_000  # + the run's number: a seed no baseline, candidate or re-check used
RESEARCHER = "confirm"


def check_k(k: int, flag: str = "--confirm") -> int:
    """K, or a UsageError: 0 skips the confirmation, and an interval needs two runs a side."""
    if k != 0 and k < 2:
        raise UsageError(f"{flag} must be 0 (skip) or at least 2: an interval needs two runs")
    return k


@dataclass
class Plan:
    """What a confirmation re-runs, read from the branch's standings."""

    standings: Standings
    reference_commit: str
    best_number: int
    best_commit: str


def plan(ledger: Ledger, tag: str) -> Plan:
    """The recipes to re-run on branch autolab/<tag>; a UsageError when there is nothing to
    confirm yet, or a session of the branch is still running."""
    sessions = [s for s in ledger.sessions() if s.tag == tag]
    if not sessions:
        raise UsageError(f"no research session with tag {tag!r}: run `autolab research` first")
    latest = sessions[-1]
    state, _ = session_state(ledger, latest)
    if state in LIVE_STATES:
        raise UsageError(
            f"session {latest.id} on autolab/{tag} is {state}: confirm once it has ended "
            "(`autolab stop` ends it after the running experiment)"
        )
    standings = read_standings(ledger, tag)
    views = {v.number: v for v in ledger.experiments(session_ids=standings.session_ids)}
    left = [v for v in views.values() if v.status == "running" and v.kind != "confirm"]
    if left:
        raise UsageError(
            f"exp {left[0].number} on autolab/{tag} was left unfinished by a killed session: "
            f"`autolab research --resume --tag {tag}` records it first"
        )
    if standings.reference is None:
        raise UsageError(f"autolab/{tag} has no reference yet (its baseline runs never ended)")
    if standings.best_number is None:
        raise UsageError(
            f"nothing was kept on autolab/{tag}: the best is the reference, there is nothing "
            "to confirm"
        )
    baselines = [v for v in views.values() if v.kind == "baseline" and v.commit_sha]
    return Plan(
        standings, baselines[0].commit_sha, standings.best_number,
        views[standings.best_number].commit_sha,
    )  # fmt: skip


@dataclass
class Options:
    """What the listeners (notify, exporters) read as `session.options`."""

    tag: str
    k: int = DEFAULT_K
    device: str | None = None  # None: the device the branch's last session used
    isolation: str | None = None  # None: the sandbox where available
    wall_limit: float | None = None


class ConfirmSession:
    """One confirmation session. Has what the loop's listeners and `_run_plain` read of a
    research session: ledger, session_id, workspace, repo, options, standings(), on_change,
    run(); and stopping/interrupting, which a stop request or a signal sets."""

    def __init__(self, workspace: Workspace, ledger: Ledger, options: Options, listeners=()):
        self.workspace = workspace
        self.repo = workspace.root
        self.ledger = ledger
        self.options = options
        self.recorder = Recorder(ledger, options.tag, workspace.root / "results.tsv")
        self.recorder.listeners = list(listeners)
        self.recorder.subject = self
        self.on_change = lambda: None
        self.stopping = False  # end after the running run is recorded
        self.interrupting = False  # and interrupt it
        self.stop_reason = ""  # the confirmation cannot go on (a run tampered with autolab)
        self.session_id: int | None = None
        self.plan: Plan | None = None
        self.runner: Runner | None = None  # made in start(), once the device is known

    @property
    def listeners(self) -> list:
        return self.recorder.listeners

    def standings(self) -> Standings:
        return self.ledger.standings(self.options.tag)

    def start(self) -> None:
        """Check there is something to confirm, then open the session."""
        tag = self.options.tag
        self.plan = plan(self.ledger, tag)
        dirty = gitrepo.dirty_paths(self.repo)
        if dirty:  # the integrity check after each run would take them for the run's doing
            raise UsageError(
                f"the workspace has uncommitted changes ({', '.join(dirty[:3])}): commit or "
                "stash them (git stash -u) before `autolab confirm`"
            )
        last = [s for s in self.ledger.sessions() if s.tag == tag][-1]
        for view in self.ledger.unfinished():  # a confirmation killed before: as --resume does
            if view.kind == "confirm" and view.session_id in self.plan.standings.session_ids:
                self.ledger.add_result(
                    view.number, ResultRecord("interrupted", "autolab stopped before it finished")
                )
        self.options.device = self.options.device or last.hardware or "cpu"
        self.isolation = self.options.isolation or choose_isolation(None, lambda message: None)
        self.budget = last.budget_seconds
        self.seed = int(last.config.get("seed") or 0)
        self.runner = Runner(workspace=self.workspace, budget_seconds=self.budget,
                             device=self.options.device, isolation=self.isolation,
                             wall_limit=self.options.wall_limit)  # fmt: skip
        self.session_id = self.recorder.session_id = self.ledger.start_session(
            tag=tag,
            branch=last.branch,
            researcher=RESEARCHER,
            budget_seconds=self.budget,
            hardware=self.options.device,
            config={**last.config, "continues": last.id, "pid": os.getpid(),
                    "confirm": self.options.k, "isolation": self.isolation},
        )  # fmt: skip
        if last.noise:  # as --resume copies it: the next session on the branch finds it here
            noise = last.noise
            self.ledger.record_noise(self.session_id, noise.baseline_bpb, noise.spread, noise.runs)
        k, best = self.options.k, self.plan.best_number
        self._event(
            "session_started",
            f"session {self.session_id}: confirming exp {best} against the reference, {k} runs "
            f"each, interleaved",
            data={"pid": os.getpid(), "isolation": self.isolation, "confirm": k},
        )

    def run(self) -> str:
        """Run the 2K re-runs, stopping early on a stop request; returns the session status."""
        status, reason = "succeeded", ""
        recipes = [("reference", self.plan.reference_commit), ("best", self.plan.best_commit)]
        try:
            for _ in range(self.options.k):
                for recipe, commit in recipes:
                    if self.stop_reason or self._stop_requested():
                        break
                    self._run(recipe, commit)
            if self.stop_reason:
                status, reason = "failed", self.stop_reason
            elif self.stopping:
                status, reason = "cancelled", "stopped by the user"
            c = self.standings().confirmed
            self._event("note", confirmation_text(c), data={"confirmed": _plain(c)})
        except KeyboardInterrupt:
            status, reason = "cancelled", "interrupted"
            raise
        except BaseException as err:
            status, reason = "failed", str(err) or type(err).__name__
            raise
        finally:
            if self.runner is not None:
                self.runner.close()
            self._record_end(status, reason)
        return status

    def _record_end(self, status: str, reason: str) -> None:
        """A run without a result (an exception left it) is interrupted; then the end row."""
        try:
            for view in self.ledger.unfinished(self.session_id):
                self.ledger.add_result(view.number, ResultRecord("interrupted", reason or status))
            self.ledger.end_session(self.session_id, status, reason)
            self._event("session_ended", f"session {status}" + (f": {reason}" if reason else ""))
            self.recorder.write_tsv()
        except (sqlite3.Error, OSError, LedgerError):
            pass  # as the loop's: a session without an end row reads as killed

    def _stop_requested(self) -> bool:
        if self.stopping or stop_request.requested(self.workspace.state_dir):
            self.stopping = True
        return self.stopping

    def _interrupt_now(self) -> bool:
        if stop_request.requested(self.workspace.state_dir) == stop_request.NOW:
            self.stopping = self.interrupting = True
        return self.interrupting

    # -- one run -------------------------------------------------------------------------------

    def _run(self, recipe: str, commit: str) -> None:
        number = self.ledger.next_number()
        seed = self.seed + SEED_OFFSET + number
        best = self.plan.best_number
        what = "the reference" if recipe == "reference" else f"the best, exp {best}"
        self.recorder.experiment(
            ExperimentRecord(
                number=number, session_id=self.session_id, kind="confirm", commit_sha=commit,
                description=f"confirm: {what} (seed {seed})", researcher=RESEARCHER, seed=seed,
            )
        )  # fmt: skip
        script = self.workspace.state_dir / "confirm" / str(number) / TRAIN_FILE
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(gitrepo.show_file(self.repo, commit, TRAIN_FILE))
        trial = Trial(number, "confirm", commit, f"confirm {what}", seed, script)
        self.recorder.event("started", f"exp {number} started (seed {seed})", number)
        pending: list[dict] = []

        def on_metrics(record: dict) -> None:
            pending.append(record)
            if len(pending) >= 4 or record.get("progress", 0.0) >= 1.0:
                self.recorder.metrics(number, pending[:])
                pending.clear()
                self.on_change()

        result = self.runner.run(trial, on_metrics, self._interrupt_now)
        for message in self.runner.replaced():  # never a silent restart
            self.recorder.event("alert", message)
        self.recorder.metrics(number, pending)
        if reason := session_must_end(result):
            self.stop_reason = reason
        status, reason = result.status, result.reason
        if status == "ok":  # scored: a measurement, recorded as keep as a baseline run is
            status, reason = "keep", f"confirm run of {what}"
        score = result.val_bpb if status == "keep" else None
        record = result_record(result, status, reason, score, self.options.device, self.isolation)
        self.recorder.result(number, result, record)

    def _event(self, kind: str, message: str, number: int | None = None, data=None) -> None:
        self.recorder.event(kind, message, number, data)


def _plain(confirmation) -> dict | None:
    return None if confirmation is None else asdict(confirmation)
