"""The research loop: propose, commit, run, score sealed, decide, record, keep or reset.

Order matters for crash safety. For each experiment:
1. the proposal is committed on the research branch, then recorded in the ledger (created);
2. it runs (`run_experiment`), its metrics streaming into the ledger;
3. its result row is committed to the ledger *before* any git reset;
4. its commit is preserved under refs/autolab/tried/<n>; keep leaves the branch there, anything
   else resets it to the parent.
After a kill -9 at any point, `resume` finds experiments without a result (marked interrupted,
then re-run) and a branch head that disagrees with the ledger (moved back, the stray commit or
edits kept under a recovered ref and in .autolab/recovered/).
"""

import errno
import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from autolab import gitrepo, stop_request
from autolab.errors import UsageError
from autolab.experiment import DISK_FULL_MARKERS, ExperimentResult, run_experiment
from autolab.harness.settings import RunSettings
from autolab.research import branch as git_branch
from autolab.research.constants import parse_constants, values
from autolab.research.edits import EditError, SkippedProposal, validate_train_py
from autolab.research.integrity import PackageGuard
from autolab.research.policy import Noise, Policy
from autolab.research.proposal import Outcome, Proposal, ResearchContext
from autolab.sandbox.availability import choose_isolation
from autolab.track.ledger import (
    FAILED_STATUSES,
    ExperimentRecord,
    Ledger,
    LedgerError,
    ResultRecord,
)
from autolab.track.results_tsv import write_results_tsv
from autolab.track.standings import Standings
from autolab.workers import Workers
from autolab.workspace import PROGRAM_FILE, TRAIN_FILE, Workspace, prepare_data

MAX_SKIPS_IN_A_ROW = 5
EXHAUSTED = object()  # what _propose returns when the researcher has nothing left to try
CRASH_STREAK_ALERT = 3


@dataclass
class SessionOptions:
    tag: str
    budget_seconds: float
    device: str = "cpu"
    max_experiments: int | None = None  # candidates to run (baseline and rechecks not counted)
    hours: float | None = None
    baseline_runs: int = 2
    policy: Policy = field(default_factory=Policy)
    wall_limit: float | None = None
    seed: int = 0
    isolation: str | None = None  # sandbox | process; None: the sandbox where available


@dataclass
class LiveState:
    """What the terminal view shows; updated by the loop as things happen."""

    number: int | None = None
    description: str = ""
    progress: float = 0.0
    step: int = 0
    loss: float | None = None
    tokens_per_sec: float = 0.0
    phase: str = "starting"


class ResearchSession:
    def __init__(self, workspace: Workspace, researcher, options: SessionOptions, ledger: Ledger):
        self.workspace = workspace
        self.repo = workspace.root
        self.researcher = researcher
        self.options = options
        self.ledger = ledger
        self.live = LiveState()
        self.on_change = lambda: None  # the view's refresh hook
        # Called with every EventRow the session records (notifiers, tracker exporters).
        # A listener's failure is its own: it is reported as a note, never ends the session.
        self.listeners: list = []
        self.stopping = False  # end the session once the running experiment is recorded
        self.interrupting = False  # and interrupt the running experiment (Ctrl-C, stop --now)
        self.stop_reason = ""  # set when the session must end for a reason other than a stop
        self.session_id: int | None = None
        self.session_ids: list[int] = []  # this session and the earlier ones it continues
        self.noise: Noise | None = None
        self.base_commit = ""
        self.data = prepare_data(workspace)
        self.guard = PackageGuard()
        self._params_cache: dict[str, dict | None] = {}
        self.disk_full = False  # a run crashed because the disk is full: stop after recording it
        self.isolation = options.isolation or choose_isolation(None, lambda message: None)
        self.workers: Workers | None = None  # fork every experiment's processes, warm
        self.tried_sources: set[str] = set()
        self.candidates_run = 0
        self.started = time.time()

    # -- session lifecycle ---------------------------------------------------------------------

    @property
    def branch(self) -> str:
        return git_branch.branch_name(self.options.tag)

    def standings(self) -> Standings:
        """The branch's numbers, as every view reads them (`track.standings`)."""
        return self.ledger.standings(self.options.tag)

    @property
    def best_bpb(self) -> float | None:
        """What a candidate must beat: the best kept candidate's score, else the reference."""
        return self.standings().best_score

    def start(self) -> None:
        """A new session on a new branch `autolab/<tag>` from the current HEAD."""
        check_clean(self.repo)
        check_train_py(self.workspace.train_py.read_text())
        if git_branch.branch_exists(self.repo, self.branch):
            raise UsageError(
                f"branch {self.branch} exists: continue it with --resume, or pick a new --tag"
            )
        self.base_commit = git_branch.start_branch(self.repo, self.branch)
        self.session_id = self.ledger.start_session(
            tag=self.options.tag,
            branch=self.branch,
            researcher=self.researcher.name,
            budget_seconds=self.options.budget_seconds,
            hardware=self.options.device,
            config={
                "tag": self.options.tag,
                "base_commit": self.base_commit,
                "baseline_runs": self.options.baseline_runs,
                "k": self.options.policy.k,
                "min_delta": self.options.policy.min_delta,
                "greedy": self.options.policy.greedy,
                "seed": self.options.seed,
                "max_experiments": self.options.max_experiments,
                "hours": self.options.hours,
                "pid": os.getpid(),
                "isolation": self.isolation,
            },
        )
        self.session_ids = [self.session_id]
        self._event(
            "session_started",
            f"session {self.session_id} on {self.branch}",
            data={"pid": os.getpid(), "isolation": self.isolation},
        )
        self._note_isolation()

    def resume(self) -> None:
        """Continue the research on branch autolab/<tag>.

        A session whose process was killed is continued as it is; one that ended (stopped,
        finished, failed) is continued by a new session on the same branch, which sees the
        earlier sessions' experiments and noise as its own history.
        """
        sessions = [s for s in self.ledger.sessions() if s.tag == self.options.tag]
        if not sessions:
            raise UsageError(f"no session with tag {self.options.tag!r} to resume")
        check_clean(self.repo, allow=True)
        session = sessions[-1]
        self.session_ids = self.ledger.standings(self.options.tag).session_ids
        self.base_commit = session.config["base_commit"]
        git_branch.checkout(self.repo, self.branch)
        if session.status is None:
            self.session_id = session.id
        else:
            self.session_id = self.ledger.start_session(
                tag=self.options.tag,
                branch=self.branch,
                researcher=self.researcher.name,
                budget_seconds=self.options.budget_seconds,
                hardware=self.options.device,
                config={
                    **session.config,
                    "pid": os.getpid(),
                    "continues": session.id,
                    "isolation": self.isolation,
                },
            )
            self.session_ids.append(self.session_id)
            if session.noise:
                noise = session.noise
                self.ledger.record_noise(
                    self.session_id, noise.baseline_bpb, noise.spread, noise.runs
                )
        for view in [e for e in self.ledger.unfinished() if e.session_id in self.session_ids]:
            self.ledger.add_result(
                view.number, ResultRecord("interrupted", "autolab stopped before it finished")
            )
            if view.kind != "baseline" and view.commit_sha:
                git_branch.preserve(self.repo, view.number, view.commit_sha)
            self._event("verdict", f"exp {view.number} interrupted", view.number)
        experiments = self._experiments()
        kept = [e for e in experiments if e.status == "keep" and e.kind == "candidate"]
        expected = kept[-1].commit_sha if kept else self.base_commit
        recovered = git_branch.recover_head(
            self.repo, expected, self.workspace.state_dir / "recovered" / time.strftime("%H%M%S")
        )
        if recovered:
            self._event("note", f"branch moved back to {expected[:7]}; stray work in {recovered}")
        if session.noise:
            noise = session.noise
            self.noise = Noise(noise.baseline_bpb, noise.spread, noise.runs)
        self.candidates_run = sum(1 for e in experiments if e.kind == "candidate")
        self._event(
            "session_started",
            f"session {self.session_id} resumed on {self.branch}",
            data={"pid": os.getpid(), "isolation": self.isolation},
        )
        self._note_isolation()

    def run(self) -> str:
        """Run until a limit, a stop request or the researcher runs dry; returns the status."""
        status, reason = "succeeded", ""
        try:
            self._remember_tried()
            self._measure_baseline()
            if self.noise is None:  # stopped before the baseline was measured
                self.stopping = True
            reruns = [
                e
                for e in self._experiments()
                if e.status == "interrupted" and e.kind == "candidate" and not self._rerun_done(e)
            ]
            for view in reruns:
                if self._out_of_time():
                    break
                source = gitrepo.show_file(self.repo, view.commit_sha, TRAIN_FILE)
                self._candidate(Proposal(source, view.description, view.params or None))
                self._stop_if_disk_full()
            skips = 0
            while not self._out_of_time() and self.noise is not None:
                proposal = self._propose()
                if proposal is None:
                    skips += 1
                    if skips >= MAX_SKIPS_IN_A_ROW:
                        reason = f"the researcher gave nothing usable {skips} times in a row"
                        break
                    continue
                if proposal is EXHAUSTED:
                    reason = "the researcher has nothing left to try"
                    break
                skips = 0
                self._candidate(proposal)
                self._stop_if_disk_full()
            if self.stop_reason:
                status, reason = "failed", self.stop_reason
            elif self.stopping:
                status, reason = "cancelled", "stopped by the user"
        except (OSError, sqlite3.OperationalError, gitrepo.GitError) as err:
            status, reason = "failed", _error_text(err)
            if _is_disk_full(err):
                where = getattr(err, "filename", None) or "writing"
                raise UsageError(
                    f"the disk is full ({where}): free some space, then continue with "
                    "`autolab research --resume`"
                ) from err
            raise
        except BaseException as err:  # the session's end is recorded whatever ended it
            status, reason = "failed", str(err) or type(err).__name__
            raise
        finally:
            if self.workers is not None:
                self.workers.close()
            self._record_end(status, reason)
        return status

    def _record_end(self, status: str, reason: str) -> None:
        """Best effort: when the disk is full even this may fail, and the original error is
        the one to show. A session without an end row reads as killed, and resumes."""
        try:
            self.ledger.end_session(self.session_id, status, reason)
            self._event("session_ended", f"session {status}" + (f": {reason}" if reason else ""))
            write_results_tsv(self.ledger, self.repo / "results.tsv")
        except (sqlite3.Error, OSError, LedgerError):
            pass

    def _out_of_time(self) -> bool:
        if self.stopping or stop_request.requested(self.workspace.state_dir):
            self.stopping = True
            return True
        limit = self.options.max_experiments
        if limit is not None and self.candidates_run >= limit:
            return True
        hours = self.options.hours
        return hours is not None and time.time() - self.started > hours * 3600

    # -- baseline and noise --------------------------------------------------------------------

    def _measure_baseline(self) -> None:
        if self.noise is not None:
            return
        runs = [e for e in self._experiments() if e.kind == "baseline"]
        scores = [e.val_bpb for e in runs if e.status == "keep" and e.val_bpb is not None]
        while len(scores) < self.options.baseline_runs and not self._out_of_time():
            seed = self.options.seed + len(runs)
            result, number = self._run_commit(
                "baseline", gitrepo.head(self.repo), f"baseline (seed {seed})", seed
            )
            runs.append(number)
            self._stop_if_disk_full()
            if result.status != "ok":
                raise UsageError(
                    f"the baseline train.py failed ({result.status}: {result.reason}); "
                    f"fix it and see {result.run_dir / 'run.log'}"
                )
            self._record(number, result, "keep", "baseline run")
            scores.append(result.val_bpb)
        if len(scores) < self.options.baseline_runs:
            return
        self.noise = Noise.measure(scores)
        self.ledger.record_noise(
            self.session_id, self.noise.baseline_bpb, self.noise.spread, len(scores)
        )
        band = self.options.policy.band(self.noise)
        self._event(
            "note",
            f"baseline {self.noise.baseline_bpb:.4f} over {len(scores)} runs, spread "
            f"{self.noise.spread:.4f}; keep needs a gain over {band:.4f}",
        )

    # -- candidates ----------------------------------------------------------------------------

    def _context(self) -> ResearchContext:
        standings = self.standings()
        rows = {r.number: r for r in standings.rows}
        history = [
            Outcome(
                e.number, e.description, e.status, e.val_bpb, e.params or None, e.reason,
                parent_params=self._params_at(e.parent_commit),
                kind=e.kind, score=rows[e.number].score, delta=rows[e.number].delta,
                num_steps=e.num_steps, tokens_per_sec=e.tokens_per_sec,
                peak_memory_mb=e.peak_memory_mb,
            )
            for e in self._experiments()
            if e.status != "running" and e.number in rows
        ]  # fmt: skip
        failures = [e for e in self._experiments() if e.status in FAILED_STATUSES]
        ref = standings.reference
        return ResearchContext(
            workspace=self.repo,
            best_source=self.workspace.train_py.read_text(),
            program=(self.repo / PROGRAM_FILE).read_text(),
            history=history,
            best_val_bpb=standings.best_score,
            baseline_val_bpb=ref.bpb if ref else None,
            last_failure_log=self._log_tail(failures[-1].number) if failures else None,
            budget_seconds=self.options.budget_seconds,
            noise_spread=ref.spread if ref else None,
            keep_band=ref.band if ref else None,
            device=self.options.device,
        )

    def _params_at(self, commit: str) -> dict | None:
        """The constants of train.py at `commit` (an experiment's parent), parsed once each."""
        if not commit:
            return None
        if commit not in self._params_cache:
            try:
                source = gitrepo.show_file(self.repo, commit, TRAIN_FILE)
                self._params_cache[commit] = values(parse_constants(source))
            except (gitrepo.GitError, SyntaxError, ValueError):
                self._params_cache[commit] = None
        return self._params_cache[commit]

    def _propose(self):
        self.live.phase, self.live.description = "thinking", f"{self.researcher.name} researcher"
        self.on_change()
        try:
            proposal = self.researcher.propose(self._context())
        except SkippedProposal as err:
            self._event("note", f"proposal skipped: {err.reason}")
            return None
        if proposal is None:
            return EXHAUSTED
        try:
            validate_train_py(proposal.source, self.workspace.train_py.read_text())
        except EditError as err:
            self._event("note", f"proposal rejected: {err}")
            return None
        if source_hash(proposal.source) in self.tried_sources:
            self._event("note", f"skipped, already tried: {proposal.description}")
            return None
        return proposal

    def _candidate(self, proposal: Proposal) -> None:
        self.tried_sources.add(source_hash(proposal.source))
        parent = gitrepo.head(self.repo)
        commit = git_branch.commit_proposal(self.repo, proposal.source, proposal.description)
        if gitrepo.changed_paths(self.repo, parent, commit) != [TRAIN_FILE]:
            git_branch.reset_to(self.repo, parent)
            self._event("note", "proposal touched files other than train.py; rejected")
            return
        self.candidates_run += 1
        result, number = self._run_commit(
            "candidate", commit, proposal.description, self.options.seed, proposal, parent
        )
        verdict, reason = self._verdict(result)
        score = result.val_bpb
        if verdict == "recheck":
            verdict, reason, score = self._recheck(number, commit, proposal, parent, result)
        self._finish(number, commit, parent, result, verdict, reason, score)

    def _verdict(self, result: ExperimentResult) -> tuple[str, str]:
        if result.status != "ok":
            return result.status, result.reason
        return self.options.policy.decide(result.val_bpb, self.best_bpb, self.noise)

    def _recheck(self, number, commit, proposal, parent, first: ExperimentResult):
        seed = self.options.seed + 1000 + number
        again, again_number = self._run_commit(
            "recheck",
            commit,
            f"re-check of exp {number} (seed {seed})",
            seed,
            proposal,
            parent,
            rechecks=number,
        )
        if again.status != "ok":
            self._record(again_number, again, again.status, again.reason)
            return "discard", f"its re-run ended {again.status}: {again.reason}", first.val_bpb
        scores = [first.val_bpb, again.val_bpb]
        verdict, reason = self.options.policy.decide_recheck(scores, self.best_bpb)
        self._record(again_number, again, verdict, reason)
        first.flags["recheck_scores"] = scores
        return verdict, reason, sum(scores) / len(scores)

    def _finish(self, number, commit, parent, result, verdict, reason, score) -> None:
        previous = self.best_bpb
        self._record(number, result, verdict, reason, score)  # before any reset
        git_branch.preserve(self.repo, number, commit)
        if verdict == "keep":
            self._event(
                "alert",
                f"new best {score:.4f} (was {previous:.4f})",
                number,
                {"alert": "new_best", "val_bpb": score},
            )
        else:
            git_branch.reset_to(self.repo, parent)
        self._crash_streak_alert(number)

    def _crash_streak_alert(self, number: int) -> None:
        recent = [e.status for e in self._experiments()][-CRASH_STREAK_ALERT:]
        if len(recent) == CRASH_STREAK_ALERT and all(s in FAILED_STATUSES for s in recent):
            self._event(
                "alert",
                f"{CRASH_STREAK_ALERT} failed experiments in a row",
                number,
                {"alert": "crash_streak"},
            )

    # -- running one commit --------------------------------------------------------------------

    def _run_commit(self, kind, commit, description, seed, proposal=None, parent="", rechecks=None):
        number = self.ledger.next_number()
        usage = proposal.usage if proposal else None
        self.ledger.add_experiment(
            ExperimentRecord(
                number=number,
                session_id=self.session_id,
                kind=kind,
                commit_sha=commit,
                description=description,
                parent_commit=parent,
                researcher=self.researcher.name if kind != "baseline" else "baseline",
                seed=seed,
                params=(proposal.params or {}) if proposal else {},
                llm_prompt_tokens=usage.prompt_tokens if usage and kind == "candidate" else None,
                llm_completion_tokens=usage.completion_tokens
                if usage and kind == "candidate"
                else None,
                llm_cost_usd=usage.cost_usd if usage and kind == "candidate" else None,
                rechecks=rechecks,
            )
        )
        self._event("created", f"exp {number}: {description}", number)
        self.live = LiveState(number=number, description=description, phase="training")
        self.on_change()
        run_dir = self.workspace.runs_dir / str(number)
        settings = RunSettings(
            data_dir=self.data.data_dir,
            run_dir=run_dir,
            budget_seconds=self.options.budget_seconds,
            device=self.options.device,
            seed=seed,
        )
        self._event("started", f"exp {number} started (seed {seed})", number)
        pending: list[dict] = []

        def on_metrics(record: dict) -> None:
            pending.append(record)
            self.live.progress = record.get("progress", 0.0)
            self.live.step = record.get("step", 0)
            self.live.loss = record.get("loss")
            self.live.tokens_per_sec = record.get("tokens_per_sec", 0.0)
            if len(pending) >= 4 or self.live.progress >= 1.0:
                self._flush_metrics(number, pending)
            self.on_change()

        self.guard.take()
        result = run_experiment(
            self.workspace.train_py,
            settings,
            self.data.val_path,
            wall_limit=self.options.wall_limit,
            on_metrics=on_metrics,
            should_stop=self._out_of_time_now,
            workers=self._workers(),
        )
        for message in self.workers.replaced:  # never a silent restart
            self._event("alert", f"exp {number}: {message}", number, {"alert": "worker_died"})
        self.workers.replaced.clear()
        self._flush_metrics(number, pending)
        result = self._check_integrity(result, run_dir)
        self.disk_full = self.disk_full or result.disk_full
        self.live.phase = "scoring"
        self.on_change()
        if result.val_bpb is not None:
            self._event(
                "evaluation",
                f"exp {number} sealed val_bpb {result.val_bpb:.6f}",
                number,
                {"val_bpb": result.val_bpb, "reported": result.reported.get("val_bpb")},
            )
        self._event(
            "finished",
            f"exp {number} finished: {result.status}",
            number,
            {"status": result.status, "reason": result.reason},
        )
        return result, number

    def _stop_if_disk_full(self) -> None:
        """A run that crashed on a full disk ends the session (as the disk error it was)."""
        if self.disk_full:
            path = str(self.workspace.runs_dir)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    def _workers(self) -> Workers:
        """The session's zygotes, started once (a dead one is replaced on the next request)."""
        if self.workers is None:
            # Referee paths the sandbox must never show, should any fall under what it shows.
            hidden = [self.data.val_path.parent, self.repo, self.workspace.state_dir]
            self.workers = Workers(
                self.isolation, self.data.data_dir, self.data.val_path, self.options.device, hidden
            )
            self.workers.start()
        return self.workers

    def _out_of_time_now(self) -> bool:
        """Checked while a run is going: only a request to stop now ends it early."""
        if stop_request.requested(self.workspace.state_dir) == stop_request.NOW:
            self.stopping = self.interrupting = True
        return self.interrupting

    def _flush_metrics(self, number: int, pending: list[dict]) -> None:
        if not pending:
            return
        self.ledger.add_metrics(number, list(pending))
        last = pending[-1]
        self._event(
            "step",
            f"exp {number}  step {last.get('step')} ({100 * last.get('progress', 0):.0f}%)  "
            f"loss {last.get('loss', float('nan')):.3f}",
            number,
            {
                k: last.get(k)
                for k in ("step", "progress", "loss", "lr", "tokens_per_sec", "memory_mb")
            },
        )
        pending.clear()

    def _check_integrity(self, result: ExperimentResult, run_dir: Path) -> ExperimentResult:
        """Files the experiment changed outside its run directory make it invalid."""
        changed = git_branch.quarantine_changes(self.repo, run_dir / "workspace-changes")
        if result.flags.get("sealed_changed"):
            self.stopping = True
            self.stop_reason = result.reason
        tampered = self.guard.changed(run_dir / "autolab-changes")
        if tampered:
            self.stopping = True
            self.stop_reason = (
                f"autolab's own code changed while experiment {run_dir.name} ran "
                f"({', '.join(tampered[:3])}; copies in {run_dir / 'autolab-changes'}): if that "
                "was you, start the session again; if not, reinstall autolab"
            )
            return ExperimentResult(
                "invalid",
                f"modified autolab's own code: {', '.join(tampered[:3])}",
                run_dir=run_dir,
                reported=result.reported,
                wall_seconds=result.wall_seconds,
            )
        if changed:
            return ExperimentResult(
                "invalid",
                f"changed files outside train.py: {', '.join(changed[:3])}",
                run_dir=run_dir,
                reported=result.reported,
                wall_seconds=result.wall_seconds,
            )
        return result

    # -- recording -----------------------------------------------------------------------------

    def _record(
        self, number: int, result: ExperimentResult, status: str, reason: str, score=None
    ) -> None:
        if status == "ok":
            status = "keep"
        reported = result.reported
        self.ledger.add_result(
            number,
            ResultRecord(
                status=status,
                reason=reason,
                val_bpb=result.val_bpb,
                reported_val_bpb=_number(reported.get("val_bpb")),
                peak_memory_mb=_number(reported.get("peak_memory_mb")),
                wall_seconds=result.wall_seconds,
                training_seconds=_number(reported.get("training_seconds")),
                total_seconds=_number(reported.get("total_seconds")),
                tokens_per_sec=_number(reported.get("tokens_per_sec")),
                num_steps=_number(reported.get("num_steps")),
                num_params_M=_number(reported.get("num_params_M")),
                hardware=str(reported.get("device", self.options.device)),
                flags={**result.flags, "isolation": result.isolation or self.isolation},
                score=score,
            ),
        )
        message, _, data = verdict_event(self.standings(), number, status, reason)
        self._event("verdict", message, number, {**data, "val_bpb": result.val_bpb})
        write_results_tsv(self.ledger, self.repo / "results.tsv")
        self.live = LiveState(phase="recorded")
        self.on_change()

    def _note_isolation(self) -> None:
        if self.isolation != "sandbox":
            self._event(
                "note",
                "experiments run with process isolation, not in the sandbox: the integrity "
                "checks catch an experiment that cheats, not a hostile program",
            )

    def _event(self, kind: str, message: str, number: int | None = None, data=None) -> None:
        event_id = self.ledger.add_event(
            kind, message, session_id=self.session_id, number=number, data=data
        )
        for listener in self.listeners:
            try:
                listener(self.ledger.events(after_id=event_id - 1, limit=1)[0], self)
            except Exception as err:  # a notifier's failure must not end a night's research
                self.ledger.add_event(
                    "note", f"listener {listener!r} failed: {err}", session_id=self.session_id
                )

    # -- helpers -------------------------------------------------------------------------------

    def _experiments(self):
        """Experiments of this session and of the earlier ones on the same branch it continues."""
        return [e for e in self.ledger.experiments() if e.session_id in self.session_ids]

    def _remember_tried(self) -> None:
        self.tried_sources.add(source_hash(self.workspace.train_py.read_text()))
        for view in self._experiments():
            if view.status not in ("interrupted", "running") and view.commit_sha:
                source = gitrepo.show_file(self.repo, view.commit_sha, TRAIN_FILE)
                self.tried_sources.add(source_hash(source))

    def _rerun_done(self, interrupted) -> bool:
        """Whether an interrupted candidate was already run again later in the session."""
        return any(
            e.number > interrupted.number
            and e.commit_sha
            and e.description == interrupted.description
            and e.status != "interrupted"
            for e in self._experiments()
        )

    def _log_tail(self, number: int, lines: int = 30) -> str | None:
        log = self.workspace.runs_dir / str(number) / "run.log"
        if not log.is_file():
            return None
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def verdict_event(standings: Standings, number: int, status: str, reason: str):
    """(message, number, data) of a verdict event: the score and Δ the standings give."""
    row = standings.row(number)
    score = row.score if row else None
    delta = row.delta if row else None
    text = f" {score:.4f}" if score is not None else ""
    text += f" (Δ {delta:+.4f} vs reference)" if delta is not None else ""
    data = {"status": status, "score": score, "delta": delta,
            "delta_best_before": row.delta_best_before if row else None}  # fmt: skip
    return f"exp {number} {status}{text}: {reason}", number, data


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def check_clean(repo: Path, allow: bool = False) -> None:
    """A research session needs a clean tree. On resume (`allow`), the only changes allowed are
    autolab's own half-written ones, which recovery keeps aside."""
    dirty = gitrepo.dirty_paths(repo)
    if allow:
        dirty = [path for path in dirty if path != TRAIN_FILE]
    if dirty:
        raise UsageError(
            f"the workspace has uncommitted changes ({', '.join(dirty[:3])}): "
            "commit or stash them (git stash -u) before `autolab research`"
        )


def check_train_py(source: str) -> None:
    try:
        validate_train_py(source)
    except EditError as err:
        raise UsageError(f"train.py cannot be researched: {err}") from None


def _is_disk_full(err: BaseException) -> bool:
    """ENOSPC from a write of ours, SQLITE_FULL from the ledger, or git saying so."""
    if isinstance(err, OSError):
        return err.errno == errno.ENOSPC
    if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    return any(marker in str(err).lower() for marker in DISK_FULL_MARKERS)


def _error_text(err: BaseException) -> str:
    if isinstance(err, OSError):
        return f"{err.strerror or err}: {err.filename or ''}".strip(": ")
    return str(err)


def _number(value):
    return value if isinstance(value, int | float) else None
