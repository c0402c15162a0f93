"""The research loop: propose, commit, run, score sealed, decide, record, keep or reset.

Order matters for crash safety. For each experiment:
1. the proposal is committed on the research branch, then recorded in the ledger (created);
2. it runs (`trial.Runner`), its metrics streaming into the ledger;
3. its result row is committed to the ledger *before* any git reset;
4. its commit is preserved under refs/autolab/tried/<n>; keep leaves the branch there, anything
   else resets it to the parent.
After a kill -9 at any point, `resume` finds experiments without a result (marked interrupted,
then re-run) and a branch head that disagrees with the ledger (moved back, the stray commit or
edits kept under a recovered ref and in .autolab/recovered/).

Who does what: `recorder` writes every row and event (and hands them to listeners),
`trial` runs one experiment, `branch` does the git work, `policy` decides keep or discard;
this module only puts them in order.
"""

import errno
import hashlib
import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from autolab import gitrepo, stop_request
from autolab.errors import UsageError
from autolab.experiment import DISK_FULL_MARKERS, ExperimentResult
from autolab.hardware import fingerprint, label
from autolab.research import branch as git_branch
from autolab.research.context import research_context
from autolab.research.edits import EditError, SkippedProposal, validate_train_py
from autolab.research.policy import (
    BASELINE_RUNS_ALONE,
    DEFAULT_BASELINE_RUNS,
    Noise,
    Policy,
    pooled_spread,
)
from autolab.research.proposal import Proposal, ResearchContext
from autolab.research.pruning import Curve, Reference, Watch
from autolab.research.rebase import params_of, rebase, rebase_marker, rebased_description
from autolab.research.recorder import Recorder, result_record
from autolab.research.recorder import verdict_event as verdict_event  # where callers import it
from autolab.research.slots import Slot
from autolab.research.trial import Runner, Trial, session_must_end
from autolab.sandbox.availability import choose_isolation
from autolab.track.ledger import (
    FAILED_STATUSES,
    ExperimentRecord,
    ExperimentView,
    Ledger,
    LedgerError,
    ResultRecord,
)
from autolab.track.standings import Standings, noise_pool, pool_key
from autolab.workspace import TRAIN_FILE, Workspace

MAX_SKIPS_IN_A_ROW = 5
CRASH_STREAK_ALERT = 3


@dataclass
class SessionOptions:
    tag: str
    budget_seconds: float
    device: str = "cpu"
    max_experiments: int | None = None  # candidates to run (baseline and rechecks not counted)
    hours: float | None = None
    baseline_runs: int | None = None  # None: 2 with earlier runs to pool the spread with, else 3
    policy: Policy = field(default_factory=Policy)
    wall_limit: float | None = None
    seed: int = 0
    isolation: str | None = None  # sandbox | process; None: the sandbox where available
    # What trains and scores one experiment, with run_experiment's signature and result.
    # None: run_experiment on this machine; `--ray`: autolab.cluster's RayRunner.
    runner: Callable[..., ExperimentResult] | None = None
    prune: bool = False  # stop candidates whose dev loss is hopeless early (research.pruning)
    # Each experiment in flight's share of the machine (research.slots); more than one runs
    # them at once (research.parallel). None: one, with all the cores.
    slots: list[Slot] | None = None


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
        self.researcher = researcher
        self.options = options
        self.ledger = ledger
        self.isolation = options.isolation or choose_isolation(None, lambda message: None)
        self.recorder = Recorder(ledger, options.tag, workspace.root / "results.tsv")
        self.recorder.subject = self  # listeners read the standings and workspace from it
        slots = options.slots or [None]
        self.runner = Runner(workspace, options.budget_seconds, options.device, self.isolation,
                             options.wall_limit, options.runner, slot=slots[0],
                             workers_in_flight=len(slots))  # fmt: skip
        self.live = LiveState()
        self.on_change = lambda: None  # the view's refresh hook
        self.stopping = False  # end the session once the running experiment is recorded
        self.interrupting = False  # and interrupt the running experiment (Ctrl-C, stop --now)
        self.session_ids: list[int] = []  # this session and the earlier ones it continues
        self.noise: Noise | None = None
        self.base_commit = ""
        self.tried_sources: set[str] = set()
        self.started = time.time()
        # (the best's number, its dev-loss curves): what --prune holds candidates against
        self.prune_reference: tuple[int | None, Reference] | None = None
        self.last_number = 0  # the last experiment number handed out (several may be in flight)
        self.done = ""  # why the researcher has nothing more, once it says so
        self.skips = 0  # proposals skipped in a row

    @property
    def repo(self) -> Path:
        return self.workspace.root

    @property
    def session_id(self) -> int | None:
        return self.recorder.session_id

    @property
    def listeners(self) -> list:
        """Called with every EventRow the session records (notifiers, tracker exporters)."""
        return self.recorder.listeners

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

    # -- session lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """A new session on a new branch `autolab/<tag>` from the current HEAD."""
        check_clean(self.repo)
        check_train_py(self.workspace.train_py.read_text())
        if git_branch.branch_exists(self.repo, self.branch):
            raise UsageError(
                f"branch {self.branch} exists: continue it with --resume, or pick a new --tag"
            )
        self.base_commit = git_branch.start_branch(self.repo, self.branch)
        policy = self.options.policy
        config = {"tag": self.options.tag, "base_commit": self.base_commit,
                  "baseline_runs": self.options.baseline_runs, "k": policy.k,
                  "min_delta": policy.min_delta, "greedy": policy.greedy,
                  "seed": self.options.seed, "max_experiments": self.options.max_experiments,
                  "hours": self.options.hours}  # fmt: skip
        self._open_session(config)
        self._announce(f"session {self.session_id} on {self.branch}")

    def resume(self) -> None:
        """Continue the research on branch autolab/<tag>.

        A session whose process was killed is continued as it is; one that ended (stopped,
        finished, failed) is continued by a new session on the same branch, which sees the
        earlier sessions' experiments and noise as its own history.
        """
        sessions = self.ledger.sessions(tag=self.options.tag)
        if not sessions:
            raise UsageError(f"no session with tag {self.options.tag!r} to resume")
        check_clean(self.repo, allow=True)
        session = sessions[-1]
        self.session_ids = self.standings().session_ids
        self.base_commit = session.config["base_commit"]
        git_branch.checkout(self.repo, self.branch)
        # On other hardware the branch's reference is not this session's: it measures its own
        # (the baseline runs, on the branch's best) before any candidate.
        elsewhere = self._reference_elsewhere()
        noise = None if elsewhere else session.noise
        if session.status is None:
            self.recorder.session_id = session.id
        else:
            self._open_session({**session.config, "continues": session.id})
            if noise:
                self.ledger.record_noise(
                    self.session_id, noise.baseline_bpb, noise.spread, noise.runs
                )
        for view in self.ledger.unfinished(session_ids=self.session_ids):
            self.ledger.add_result(
                view.number, ResultRecord("interrupted", "autolab stopped before it finished")
            )
            if view.kind != "baseline" and view.commit_sha:
                git_branch.preserve(self.repo, view.number, view.commit_sha)
            self.recorder.event("verdict", f"exp {view.number} interrupted", view.number)
        kept = [e for e in self._experiments() if e.status == "keep" and e.kind == "candidate"]
        expected = kept[-1].commit_sha if kept else self.base_commit
        recovered = git_branch.recover_head(
            self.repo, expected, self.workspace.state_dir / "recovered" / time.strftime("%H%M%S")
        )
        if recovered:
            self.recorder.note(f"branch moved back to {expected[:7]}; stray work in {recovered}")
        if noise:
            self.noise = Noise(noise.baseline_bpb, noise.spread, noise.runs)
        self._announce(f"session {self.session_id} resumed on {self.branch}")
        if elsewhere:
            self.recorder.note(elsewhere)

    def _reference_elsewhere(self) -> str | None:
        """Why the branch's reference does not serve this session, if it was measured on
        another fingerprint than this session's runs will record."""
        reference, here = self.standings().reference, self.hardware()
        if not (reference and reference.hardware and here) or reference.hardware == here:
            return None
        return (f"this session runs on {label(here)}; the branch's reference was measured on "
                f"{label(reference.hardware)}: scores are compared only on one fingerprint, so "
                "it measures this one's own reference on the branch's best first")  # fmt: skip

    def hardware(self) -> dict | None:
        """The fingerprint this session's runs record (the runner takes it the same way);
        None when they run on another machine (--ray: the node's)."""
        if self.options.runner is not None:
            return None
        slots = self.options.slots or [Slot(0, 0)]
        return fingerprint(self.options.device, workers=len(slots), threads=slots[0].threads)

    def _open_session(self, config: dict) -> None:
        self.recorder.session_id = self.ledger.start_session(
            tag=self.options.tag,
            branch=self.branch,
            researcher=self.researcher.name,
            budget_seconds=self.options.budget_seconds,
            hardware=self.options.device,
            config={
                **config,
                "pid": os.getpid(),
                "isolation": self.isolation,
                "prune": self.options.prune,
            },
        )
        self.session_ids.append(self.session_id)

    def _announce(self, message: str) -> None:
        self.recorder.event(
            "session_started", message, data={"pid": os.getpid(), "isolation": self.isolation}
        )
        if self.isolation != "sandbox":
            self.recorder.note(
                "experiments run with process isolation, not in the sandbox: the integrity "
                "checks catch an experiment that cheats, not a hostile program"
            )

    def run(self) -> str:
        """Run until a limit, a stop request or the researcher runs dry; returns the status."""
        status, reason = "failed", ""
        try:
            status, reason = self._research()
        except (OSError, sqlite3.OperationalError, gitrepo.GitError) as err:
            reason = _error_text(err)
            if _is_disk_full(err):
                raise disk_full_error(getattr(err, "filename", None) or "writing") from err
            raise
        except BaseException as err:  # the session's end is recorded whatever ended it
            reason = str(err) or type(err).__name__
            raise
        finally:
            self.runner.close()
            self._record_end(status, reason)
        return status

    def _research(self) -> tuple[str, str]:
        """The session, top to bottom: the reference (baseline runs), the candidates a kill
        interrupted, then the researcher's proposals until a limit. Returns (status, reason)."""
        self._remember_tried()
        fatal = self._measure_baseline()
        for proposal in self._carried_over() if self.noise else []:
            if fatal or self._out_of_time():
                break
            fatal = self._candidate(proposal)
        while not (fatal or self.done or self.noise is None or self._out_of_time()):
            if proposal := self._ask():
                fatal = self._candidate(proposal)
        if fatal:
            return "failed", fatal
        if self.stopping or self.noise is None:  # a stop, or stopped before the reference
            return "cancelled", "stopped by the user"
        return "succeeded", self.done

    def _ask(self) -> Proposal | None:
        """The researcher's next proposal; None after a skip (noted in the ledger), or once it
        has nothing left or gave nothing usable MAX_SKIPS_IN_A_ROW times in a row, which sets
        `self.done` to say so. One worker or several ask the same way."""
        try:
            proposal = self._propose()
        except SkippedProposal as skipped:
            self.recorder.note(skipped.reason)
            self.skips += 1
            if self.skips >= MAX_SKIPS_IN_A_ROW:
                self.done = f"the researcher gave nothing usable {self.skips} times in a row"
            return None
        if proposal is None:
            self.done = "the researcher has nothing left to try"
        else:
            self.skips = 0
        return proposal

    def _record_end(self, status: str, reason: str) -> None:
        """Best effort: when the disk is full even this may fail, and the original error is
        the one to show. A session without an end row reads as killed, and resumes."""
        try:
            self.ledger.end_session(self.session_id, status, reason)
            self.recorder.event(
                "session_ended", f"session {status}" + (f": {reason}" if reason else "")
            )
            self.recorder.write_tsv()
        except (sqlite3.Error, OSError, LedgerError):
            pass

    def _out_of_time(self) -> bool:
        limit = self.options.max_experiments
        return self._stopped() or (limit is not None and self._candidates_run() >= limit)

    def _stopped(self) -> bool:
        """A stop was asked for, or the session's hours are up."""
        if self.stopping or stop_request.requested(self.workspace.state_dir):
            self.stopping = True
            return True
        hours = self.options.hours
        return hours is not None and time.time() - self.started > hours * 3600

    def _stop_now(self) -> bool:
        """Checked while a run is going: only a request to stop now ends it early."""
        if stop_request.requested(self.workspace.state_dir) == stop_request.NOW:
            self.stopping = self.interrupting = True
        return self.interrupting

    # -- the reference -------------------------------------------------------------------------

    def _measure_baseline(self) -> str | None:
        """Run the baseline until it has enough scores, then record the noise: the spread
        pooled with earlier sessions' runs of the same commit, budget and hardware. Returns why
        the session cannot go on, if so."""
        if self.noise is not None:
            return None
        runs = [e for e in self._experiments() if e.kind == "baseline"]
        head, here = gitrepo.head(self.repo), self.hardware()
        # Runs of this reference: of the branch's best, on this session's hardware (a branch
        # continued elsewhere has earlier baseline runs that measured another one).
        scored = [e for e in runs if e.status == "keep" and e.val_bpb is not None
                  and e.commit_sha == head
                  and (not here or e.flags.get("hardware") == here)]  # fmt: skip
        scores = [e.val_bpb for e in scored]
        hardware = here or next((e.flags.get("hardware") for e in scored), None)
        while len(scores) < self._baseline_runs(hardware) and not self._out_of_time():
            trials = []
            for _ in range(min(self._baseline_runs(hardware) - len(scores), self._room())):
                seed = self.options.seed + len(runs)
                trial = self._trial("baseline", head, f"baseline (seed {seed})", seed)
                runs.append(trial)
                trials.append(trial)
            for trial, result in self._run_all(trials):
                if result.status != "ok":
                    self._record(trial.number, result, result.status, result.reason)
                    if fatal := self._fatal(result):
                        return fatal
                    if result.status == "interrupted":  # a stop --now or Ctrl-C: the loop ends
                        continue
                    raise UsageError(
                        f"the baseline train.py failed ({result.status}: {result.reason}); "
                        f"fix it and see {result.run_dir / 'run.log'}"
                    )
                self._record(trial.number, result, "keep", "baseline run")
                scores.append(result.val_bpb)
                hardware = hardware or result.flags.get("hardware")
        if len(scores) < self._baseline_runs(hardware):
            return None
        own = Noise.measure(scores)
        history = self._noise_history(hardware)
        spread, dof = pooled_spread([*history, (own.spread, len(scores))])
        self.noise = Noise(own.baseline_bpb, spread, len(scores))
        self.ledger.record_noise(self.session_id, own.baseline_bpb, spread, len(scores))
        band = self.options.policy.band(self.noise)
        pooled = (f" pooled with {len(history)} earlier session{'s' if len(history) != 1 else ''}"
                  f" ({dof} degrees of freedom; this session's own {own.spread:.4f})"
                  if history else "")  # fmt: skip
        self.recorder.note(
            f"baseline {own.baseline_bpb:.4f} over {len(scores)} runs, spread "
            f"{spread:.4f}{pooled}; keep needs a gain over {band:.4f}"
        )
        return None

    def _noise_history(self, hardware: dict | None) -> list[tuple[float, int]]:
        """(spread, runs) of earlier sessions' baseline runs of this commit, budget and
        hardware fingerprint, this branch's own aside; none without a fingerprint."""
        if not hardware:
            return []
        key = pool_key(gitrepo.head(self.repo), self.options.budget_seconds, hardware)
        return noise_pool(self.ledger, key, self.session_id, self.session_ids)

    def _baseline_runs(self, hardware: dict | None) -> int:
        """--baseline-runs when given; else 2 when earlier sessions' runs pool the spread (the
        fingerprint is known once a run is scored), 3 when none do."""
        if self.options.baseline_runs is not None:
            return self.options.baseline_runs
        return DEFAULT_BASELINE_RUNS if self._noise_history(hardware) else BASELINE_RUNS_ALONE

    # -- candidates ----------------------------------------------------------------------------

    def _context(self) -> ResearchContext:
        return research_context(self.workspace, self.standings(), self._experiments(),
                                self.options.budget_seconds, self.options.device)  # fmt: skip

    def _propose(self) -> Proposal | None:
        """The researcher's next change; None when it has nothing left to try. Raises
        SkippedProposal, its reason the note to record, when this turn gave nothing to run."""
        self.live.phase, self.live.description = "thinking", f"{self.researcher.name} researcher"
        self.on_change()
        try:
            proposal = self.researcher.propose(self._context())
        except SkippedProposal as err:
            raise SkippedProposal(f"proposal skipped: {err.reason}", err.usage) from err
        if proposal is None:
            return None
        try:
            validate_train_py(proposal.source, self.workspace.train_py.read_text())
        except EditError as err:
            raise SkippedProposal(f"proposal rejected: {err}") from err
        if source_hash(proposal.source) in self.tried_sources:
            raise SkippedProposal(f"skipped, already tried: {proposal.description}")
        return proposal

    def _candidate(self, proposal: Proposal) -> str | None:
        """Commit, run, decide, record, then keep or reset. Returns why the session cannot go
        on, if so."""
        self.tried_sources.add(source_hash(proposal.source))
        parent = gitrepo.head(self.repo)
        commit = git_branch.commit_proposal(self.repo, proposal.source, proposal.description)
        if gitrepo.changed_paths(self.repo, parent, commit) != [TRAIN_FILE]:
            git_branch.reset_to(self.repo, parent)
            self.recorder.note("proposal touched files other than train.py; rejected")
            return None
        trial = self._trial("candidate", commit, proposal.description, self.options.seed)
        result = self._run(trial, self._experiment_record(trial, proposal, parent))
        verdict, reason = self._judge(result, self.best_bpb)
        score, again = result.val_bpb, None
        if verdict == "recheck":
            verdict, reason, score, again = self._recheck(trial, proposal, parent, result)
        previous = self.best_bpb
        self._record(trial.number, result, verdict, reason, score)  # before any reset
        git_branch.preserve(self.repo, trial.number, commit)
        if verdict == "keep":
            self.recorder.event("alert", f"new best {score:.4f} (was {previous:.4f})",
                                trial.number, {"alert": "new_best", "val_bpb": score})  # fmt: skip
        else:
            git_branch.reset_to(self.repo, parent)
        self._crash_streak_alert(trial.number)
        return self._fatal(result) or (self._fatal(again) if again else None)

    def _judge(self, result: ExperimentResult, best: float) -> tuple[str, str]:
        """The policy's verdict on a run against `best` (its parent's score), on the
        reference's fingerprint only."""
        reference = self.standings().reference
        return self.options.policy.judge(
            result.status, result.reason, result.val_bpb, best, self.noise,
            result.flags.get("hardware"), reference.hardware if reference else None,
        )  # fmt: skip

    def _recheck(self, first_trial: Trial, proposal, parent, first: ExperimentResult):
        """Run a win inside the noise band again with another seed: (verdict, reason, score,
        the re-run's result)."""
        number = first_trial.number
        seed = self.options.seed + 1000 + number
        trial = self._trial("recheck", first_trial.commit, f"re-check of exp {number} "
                            f"(seed {seed})", seed)  # fmt: skip
        again = self._run(trial, self._experiment_record(trial, proposal, parent, number))
        if again.status != "ok":
            self._record(trial.number, again, again.status, again.reason)
            reason = f"its re-run ended {again.status}: {again.reason}"
            return "discard", reason, first.val_bpb, again
        scores = [first.val_bpb, again.val_bpb]
        verdict, reason = self.options.policy.decide_recheck(scores, self.best_bpb)
        self._record(trial.number, again, verdict, reason)
        first.flags["recheck_scores"] = scores
        return verdict, reason, statistics.fmean(scores), again

    def _crash_streak_alert(self, number: int) -> None:
        recent = [e.status for e in self._experiments()][-CRASH_STREAK_ALERT:]
        if len(recent) == CRASH_STREAK_ALERT and all(s in FAILED_STATUSES for s in recent):
            self.recorder.event("alert", f"{CRASH_STREAK_ALERT} failed experiments in a row",
                                number, {"alert": "crash_streak"})  # fmt: skip

    def _fatal(self, result: ExperimentResult) -> str | None:
        """Why the session cannot go on after `result`: the referee's or autolab's own files
        changed (returned), or the disk is full (raised: it is the error to show)."""
        if result.disk_full:
            raise disk_full_error(self.workspace.runs_dir)
        return session_must_end(result)

    # -- running one experiment ----------------------------------------------------------------

    def _trial(self, kind: str, commit: str, description: str, seed: int) -> Trial:
        self.last_number = max(self.ledger.next_number(), self.last_number + 1)
        return Trial(self.last_number, kind, commit, description, seed)

    def _room(self) -> int:
        """How many experiments may start at once (research.parallel: one per free slot)."""
        return 1

    def _run_all(self, trials: list[Trial]):
        """(trial, result) of each baseline trial, run one after another here."""
        for trial in trials:
            yield trial, self._run(trial, self._experiment_record(trial))

    def _experiment_record(self, trial: Trial, proposal: Proposal | None = None, parent="",
                           rechecks: int | None = None) -> ExperimentRecord:  # fmt: skip
        usage = proposal.usage if proposal and trial.kind == "candidate" else None
        return ExperimentRecord(
            number=trial.number,
            session_id=self.session_id,
            kind=trial.kind,
            commit_sha=trial.commit,
            description=trial.description,
            parent_commit=parent,
            researcher=self.researcher.name if trial.kind != "baseline" else "baseline",
            seed=trial.seed,
            params=(proposal.params or {}) if proposal else {},
            llm_prompt_tokens=usage.prompt_tokens if usage else None,
            llm_completion_tokens=usage.completion_tokens if usage else None,
            llm_cost_usd=usage.cost_usd if usage else None,
            rechecks=rechecks,
        )

    def _run(self, trial: Trial, record: ExperimentRecord) -> ExperimentResult:
        """Record the experiment, run it with its metrics streaming into the ledger, and
        record how the run ended (not yet the verdict)."""
        number = trial.number
        watch = self._begin(trial, record)
        pending: list[dict] = []

        def on_metrics(metrics: dict) -> None:
            pending.append(metrics)
            if watch:
                watch.see(metrics)
            self.live.progress = metrics.get("progress", 0.0)
            self.live.step = metrics.get("step", 0)
            self.live.loss = metrics.get("loss")
            self.live.tokens_per_sec = metrics.get("tokens_per_sec", 0.0)
            if len(pending) >= 4 or self.live.progress >= 1.0:
                self.recorder.metrics(number, pending[:])
                pending.clear()
            self.on_change()

        def should_stop() -> bool:  # a stop request first: it is not a prune
            return self._stop_now() or bool(watch and watch.verdict)

        result = self.runner.run(trial, on_metrics, should_stop)
        self.recorder.metrics(number, pending)
        return self._finish(trial, result, watch, self.runner)

    def _begin(self, trial: Trial, record: ExperimentRecord) -> Watch | None:
        """Record that the experiment starts; the watch that may prune it, if any."""
        number = trial.number
        self.recorder.experiment(record)
        self.live = LiveState(number=number, description=trial.description, phase="training")
        self.on_change()
        self.recorder.event("started", f"exp {number} started (seed {trial.seed})", number)
        return self._prune_watch() if trial.kind == "candidate" else None

    def _finish(self, trial: Trial, result: ExperimentResult, watch: Watch | None,
                runner: Runner) -> ExperimentResult:  # fmt: skip
        """Record how the run ended (its metrics are in): pruned, scored, its status."""
        number = trial.number
        if watch and watch.verdict and result.status == "interrupted" and not self.interrupting:
            verdict = watch.verdict
            result = replace(result, status="pruned", reason=verdict.reason(),
                             flags={**result.flags, "pruned": verdict.to_dict()})  # fmt: skip
        for message in runner.replaced():  # never a silent restart
            self.recorder.event("alert", f"exp {number}: {message}", number,
                                {"alert": "worker_died"})  # fmt: skip
        self.live.phase = "scoring"
        self.on_change()
        if result.val_bpb is not None:
            self.recorder.event("evaluation", f"exp {number} sealed val_bpb {result.val_bpb:.6f}",
                                number, {"val_bpb": result.val_bpb,
                                         "reported": result.reported.get("val_bpb")})  # fmt: skip
        self.recorder.event("finished", f"exp {number} finished: {result.status}", number,
                            {"status": result.status, "reason": result.reason})  # fmt: skip
        return result

    def _record(self, number: int, result: ExperimentResult, status: str, reason: str,
                score: float | None = None) -> None:  # fmt: skip
        record = result_record(result, status, reason, score, self.options.device,
                               self.isolation)  # fmt: skip
        self.recorder.result(number, result, record)
        self.live = LiveState(phase="recorded")
        self.on_change()

    def _prune_watch(self) -> Watch | None:
        """What judges a candidate's dev-loss points under --prune: the current best's curve
        (research.pruning). None without --prune, or when no run recorded a dev-loss curve
        (said once in a note: the recipe does not call run.watch)."""
        if not self.options.prune:
            return None
        standings = self.standings()
        best = standings.best_number
        if self.prune_reference is None or self.prune_reference[0] != best:
            curves = self._prune_curves(standings)
            if not curves:
                self.options.prune = False
                self.recorder.note(
                    "pruning (--prune): the baseline runs recorded no dev-loss curve "
                    "(the recipe does not call run.watch): nothing is pruned"
                )
                return None
            self.prune_reference = (best, Reference(curves))
        return Watch(self.prune_reference[1])

    def _prune_curves(self, standings: Standings) -> tuple[Curve, ...]:
        """The dev-loss curves of the best: the kept candidate's and its re-check's, or before
        any keep (or when it has none) the baseline runs' that measured the reference."""
        views, best = self._experiments(), standings.best_number
        runs = [v for v in views if best is not None
                and (v.number == best or (v.kind == "recheck" and v.rechecks == best))]  # fmt: skip
        if curves := self._curves(runs):
            return curves
        reference = standings.reference
        hardware = reference.hardware if reference else None
        baselines = [v for v in views if v.kind == "baseline" and v.status == "keep"
                     and (not hardware or v.flags.get("hardware") == hardware)]  # fmt: skip
        return self._curves(baselines)

    def _curves(self, runs: list[ExperimentView]) -> tuple[Curve, ...]:
        """The runs' dev-loss curves, those with no point left out."""
        curves = (Curve.from_metrics(self.ledger.metrics(v.number)) for v in runs)
        return tuple(c for c in curves if c.points)

    # -- the branch's history ------------------------------------------------------------------

    def _experiments(self) -> list[ExperimentView]:
        """Experiments of this session and of the earlier ones on the same branch it continues."""
        return self.ledger.experiments(session_ids=self.session_ids)

    def _candidates_run(self) -> int:
        return sum(1 for e in self._experiments() if e.kind == "candidate")

    def _remember_tried(self) -> None:
        self.tried_sources.add(source_hash(self.workspace.train_py.read_text()))
        for view in self._experiments():
            if view.status not in ("interrupted", "running") and view.commit_sha:
                source = gitrepo.show_file(self.repo, view.commit_sha, TRAIN_FILE)
                self.tried_sources.add(source_hash(source))

    def _carried_over(self) -> list[Proposal]:
        """What the branch's earlier run left to do, first thing on --resume: candidates a
        kill or a stop --now interrupted, then stale wins (research.parallel) whose re-based
        run a stop left unrun."""
        proposals = []
        for view in self._interrupted_candidates():
            source = gitrepo.show_file(self.repo, view.commit_sha, TRAIN_FILE)
            proposals.append(Proposal(source, view.description, view.params or None))
        views = self._experiments()
        for view in views:
            stale = view.flags.get("stale_win") or {}
            marker = rebase_marker(view.number)
            if not stale.get("rebased") or any(marker in v.description for v in views):
                continue
            rebased, why = self._rebased(stale["parent"], view.commit_sha)
            if rebased is None:
                self.recorder.note(f"exp {view.number}'s change is not re-run: {why}")
                continue
            best = self.standings().best_number
            moved = f"exp {best}" if best is not None else "the reference"
            proposals.append(Proposal(rebased, rebased_description(view.description,
                                                                   view.number, moved),
                                      params_of(rebased, view.params or None)))  # fmt: skip
        return proposals

    def _rebased(self, parent: str, commit: str) -> tuple[str | None, str]:
        """(commit's change to its parent re-based onto the best's train.py, "") or (None,
        why not): one that no longer applies or was tried already is not run again."""
        parent_source = gitrepo.show_file(self.repo, parent, TRAIN_FILE)
        source = gitrepo.show_file(self.repo, commit, TRAIN_FILE)
        rebased, why = rebase(parent_source, source, self.workspace.train_py.read_text())
        if rebased is not None and source_hash(rebased) in self.tried_sources:
            return None, "the re-based change was tried already"
        return rebased, why

    def _interrupted_candidates(self) -> list[ExperimentView]:
        """Candidates a kill or a stop --now interrupted, not yet run again."""
        views = self._experiments()
        return [
            e for e in views
            if e.status == "interrupted" and e.kind == "candidate"
            and not any(later.number > e.number and later.commit_sha
                        and later.description == e.description
                        and later.status != "interrupted" for later in views)
        ]  # fmt: skip


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


def disk_full_error(where) -> UsageError:
    return UsageError(
        f"the disk is full ({where}): free some space, then continue with "
        "`autolab research --resume`"
    )


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
