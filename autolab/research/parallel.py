"""`autolab research --workers N`: N experiments in flight at once on one machine.

Each slot (research.slots) has its own git worktree under .autolab/workers/<i>, its own
zygotes and its own share of the machine: one GPU, or cores // N torch threads. Worker threads
only run trials (`trial.Runner.run`) and hand back results, their metrics through a queue; the
loop's main thread does everything else in the single-worker loop's order: it records every row
and event (one writer, research.recorder), commits proposals in the slots' worktrees, moves the
branch, and asks the researcher for the next proposal whenever a slot is free.

The rule for concurrent wins. A proposal is made against the current best, its parent. Its
result is judged against its parent's score with the single-worker loop's policy (noise band,
re-check of a win inside the band). A win whose parent is still the best is kept: the branch
advances. A win whose parent is no longer the best (another experiment was kept while it ran)
is stale: it is recorded `discard`, saying so, and its change (the constants it set) is
re-based onto the new best and run again as a new candidate, judged like any other; when the
change no longer applies (the new best moved the same constants, or it changes code) it is
only recorded. Everything else is recorded with its preserved ref, as with one worker.
"""

import queue
import shutil
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from autolab import gitrepo
from autolab.experiment import ExperimentResult
from autolab.research import branch as git_branch
from autolab.research.loop import LiveState, ResearchSession, source_hash
from autolab.research.proposal import Proposal
from autolab.research.pruning import Watch
from autolab.research.rebase import params_of, rebased_description
from autolab.research.trial import Runner, Trial
from autolab.track.ledger import ExperimentRecord
from autolab.workspace import TRAIN_FILE

WORKERS_DIR = "workers"  # in .autolab: one worktree per slot
WAIT_SECONDS = 0.25  # how often the main thread records metrics and checks for a stop


@dataclass
class Job:
    """One experiment in flight: what it runs, in which slot, and what it must beat."""

    trial: Trial
    runner: Runner
    proposal: Proposal | None = None
    parent: str = ""  # the best's commit when it was proposed
    parent_score: float | None = None  # and that best's score: what it is judged against
    first: "Job | None" = None  # a re-check's first run
    result: ExperimentResult | None = None
    watch: Watch | None = None
    live: LiveState = field(default_factory=LiveState)


class ParallelSession(ResearchSession):
    def __init__(self, workspace, researcher, options, ledger):
        super().__init__(workspace, researcher, options, ledger)
        self.runners = [self.runner]
        for slot in options.slots[1:]:
            runner = Runner(workspace, options.budget_seconds, options.device, self.isolation,
                            options.wall_limit, options.runner, slot=slot,
                            workers_in_flight=len(options.slots))  # fmt: skip
            self.runners.append(runner)
        for runner in self.runners:
            runner.checkout = workspace.state_dir / WORKERS_DIR / str(runner.slot.index)
        self.free: list[Runner] = list(reversed(self.runners))
        self.in_flight: dict[Future, Job] = {}
        self.backlog: deque = deque()  # re-checks and re-based wins, run before new proposals
        self.metrics: queue.Queue = queue.Queue()  # (number, record) from the worker threads
        self.lives: dict[int, LiveState] = {}  # what the terminal view shows of each run
        self.pool = ThreadPoolExecutor(len(self.runners), thread_name_prefix="autolab-worker")

    def run(self) -> str:
        try:
            return super().run()
        finally:
            self.pool.shutdown(wait=True)
            for runner in self.runners:
                runner.close()
                git_branch.remove_worktree(self.repo, runner.checkout)
            shutil.rmtree(self.workspace.state_dir / WORKERS_DIR, ignore_errors=True)

    # -- the session ---------------------------------------------------------------------------

    def _research(self) -> tuple[str, str]:
        head = gitrepo.head(self.repo)
        for runner in self.runners:
            git_branch.add_worktree(self.repo, runner.checkout, head)
        self._remember_tried()
        fatal = self._measure_baseline()
        if self.noise and not fatal:
            self.backlog.extend(self._carried_over())
            fatal = self._candidates()
        if fatal:
            return "failed", fatal
        if self.stopping or self.noise is None:
            return "cancelled", "stopped by the user"
        return "succeeded", self.done

    def _candidates(self) -> str | None:
        """Keep every slot busy until a limit; record each result as it comes in."""
        fatal = None
        while True:
            while self.free and not fatal:
                if item := self._next_from_backlog():
                    self._start_next(item)
                    continue
                if self.done or self._out_of_time():
                    break
                self.live = LiveState()  # the running ones keep theirs (self.lives)
                if proposal := self._ask():
                    self._start_candidate(proposal)
            if not self.in_flight:
                break
            for job, result in self._wait():
                fatal = self._conclude(job, result) or fatal
        for item in self.backlog:  # left when the session stops
            if isinstance(item, Job):
                self._settle(item, item.result, "discard", "not re-checked: the session stopped "
                             "first", item.result.val_bpb)  # fmt: skip
            else:  # a re-based win or a carried-over run: --resume finds it again
                self.recorder.note(f"not run, the session stopped first: {item.description} "
                                   "(`autolab research --resume` runs it)")  # fmt: skip
        return fatal

    def _next_from_backlog(self):
        """A re-check starts unless the runs are being interrupted (as with one worker, a
        stop lets it finish); a re-based win only while the session goes on."""
        for item in self.backlog:
            if isinstance(item, Job) and not self.interrupting or not self._stopped():
                self.backlog.remove(item)
                return item
        return None

    # -- starting experiments ------------------------------------------------------------------

    def _room(self) -> int:
        return len(self.free)

    def _start_next(self, item) -> None:
        if isinstance(item, Proposal):
            self._start_candidate(item)
        else:
            self._start_recheck(item)

    def _start_candidate(self, proposal: Proposal) -> None:
        """Commit the proposal on the best in a free slot's worktree and start it there."""
        self.tried_sources.add(source_hash(proposal.source))
        runner = self.free.pop()
        parent = gitrepo.head(self.repo)
        commit = git_branch.commit_in_worktree(runner.checkout, parent, proposal.source,
                                               proposal.description)  # fmt: skip
        if gitrepo.changed_paths(self.repo, parent, commit) != [TRAIN_FILE]:
            self.free.append(runner)
            self.recorder.note("proposal touched files other than train.py; rejected")
            return
        trial = self._trial("candidate", commit, proposal.description, self.options.seed)
        job = Job(trial, runner, proposal, parent, self.best_bpb)
        self._start(job, self._experiment_record(trial, proposal, parent))

    def _start_recheck(self, first: Job) -> None:
        number = first.trial.number
        seed = self.options.seed + 1000 + number
        trial = self._trial("recheck", first.trial.commit,
                            f"re-check of exp {number} (seed {seed})", seed)  # fmt: skip
        job = Job(trial, self.free.pop(), first.proposal, first.parent, first.parent_score, first)
        self._start(job, self._experiment_record(trial, first.proposal, first.parent, number))

    def _start(self, job: Job, record: ExperimentRecord) -> None:
        git_branch.check_out_in_worktree(job.runner.checkout, job.trial.commit)
        job.watch = self._begin(job.trial, record)
        job.live = self.lives[job.trial.number] = self.live
        self.in_flight[self.pool.submit(self._work, job)] = job

    def _work(self, job: Job) -> ExperimentResult:
        """In a worker thread: run the trial; nothing here writes to the ledger or git."""
        number = job.trial.number

        def on_metrics(record: dict) -> None:
            if job.watch:
                job.watch.see(record)
            self.metrics.put((number, record))

        def should_stop() -> bool:
            return self.interrupting or bool(job.watch and job.watch.verdict)

        return job.runner.run(job.trial, on_metrics, should_stop)

    def _run_all(self, trials: list[Trial]):
        """The baseline runs, all at once (a slot each), in the order they were numbered."""
        jobs = []
        for trial in trials:
            jobs.append(Job(trial, self.free.pop()))
            self._start(jobs[-1], self._experiment_record(trial))
        finished: dict[int, ExperimentResult] = {}
        while len(finished) < len(jobs):
            for job, result in self._wait():
                finished[job.trial.number] = result
        return [(job.trial, finished[job.trial.number]) for job in jobs]

    # -- results coming in ---------------------------------------------------------------------

    def _wait(self) -> list[tuple[Job, ExperimentResult]]:
        """Record the metrics that came in; the experiments that ended, their slots freed."""
        done, _ = wait(self.in_flight, timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
        self._stop_now()
        self._record_metrics()
        ended = []
        for future in sorted(done, key=lambda f: self.in_flight[f].trial.number):
            job = self.in_flight.pop(future)
            self.free.append(job.runner)
            self.live = self.lives.pop(job.trial.number, job.live)
            ended.append((job, self._finish(job.trial, future.result(), job.watch, job.runner)))
        return ended

    def _record_metrics(self) -> None:
        batches: dict[int, list[dict]] = {}
        while True:
            try:
                number, record = self.metrics.get_nowait()
            except queue.Empty:
                break
            batches.setdefault(number, []).append(record)
        for number, records in batches.items():
            self.recorder.metrics(number, records)
            live = self.lives.get(number)
            if live is not None:
                last = records[-1]
                live.progress = last.get("progress", 0.0)
                live.step, live.loss = last.get("step", 0), last.get("loss")
                live.tokens_per_sec = last.get("tokens_per_sec", 0.0)
                self.live = live
        if batches:
            self.on_change()

    def _conclude(self, job: Job, result: ExperimentResult) -> str | None:
        """Judge a candidate or re-check that ended; returns why the session must end, if so."""
        if job.trial.kind == "recheck":
            return self._conclude_recheck(job, result)
        verdict, reason = self._judge(result, job.parent_score)
        job.result = result
        if verdict == "recheck" and gitrepo.head(self.repo) == job.parent:
            self.backlog.appendleft(job)  # recorded once its re-run is in
            return self._fatal(result)
        self._settle(job, result, verdict, reason, result.val_bpb)
        return self._fatal(result)

    def _conclude_recheck(self, job: Job, again: ExperimentResult) -> str | None:
        first = job.first
        if again.status != "ok":
            self._record(job.trial.number, again, again.status, again.reason)
            reason = f"its re-run ended {again.status}: {again.reason}"
            self._settle(first, first.result, "discard", reason, first.result.val_bpb)
            return self._fatal(again)
        scores = [first.result.val_bpb, again.val_bpb]
        verdict, reason = self.options.policy.decide_recheck(scores, first.parent_score)
        self._record(job.trial.number, again, verdict, reason)
        first.result.flags["recheck_scores"] = scores
        self._settle(first, first.result, verdict, reason, sum(scores) / len(scores))
        return self._fatal(again)

    def _settle(self, job: Job, result: ExperimentResult, verdict: str, reason: str,
                score: float | None) -> None:  # fmt: skip
        """Record a candidate's verdict and preserve its commit; keep it only when its parent
        is still the best, else re-base a win onto the best (the module's rule)."""
        number, commit = job.trial.number, job.trial.commit
        head = gitrepo.head(self.repo)
        rebased = None
        if verdict in ("keep", "recheck") and head != job.parent:
            best = self.standings().best_number
            moved = f"exp {best}" if best is not None else "another experiment"
            rebased, why = self._rebased(job.parent, commit)
            then = "re-based on it to run again" if rebased else f"not re-run: {why}"
            reason = f"won against its parent ({reason}) but the best moved to {moved}: {then}"
            result.flags["stale_win"] = {"parent": job.parent, "best": head,
                                         "rebased": rebased is not None}  # fmt: skip
            verdict = "discard"
            if rebased is not None:
                description = rebased_description(job.trial.description, number, moved)
                params = params_of(rebased, job.proposal.params if job.proposal else None)
                self.backlog.append(Proposal(rebased, description, params))
        previous = self.best_bpb
        self._record(number, result, verdict, reason, score)  # before the branch moves
        git_branch.preserve(self.repo, number, commit)
        if verdict == "keep":
            git_branch.advance(self.repo, commit)
            self.recorder.event("alert", f"new best {score:.4f} (was {previous:.4f})", number,
                                {"alert": "new_best", "val_bpb": score})  # fmt: skip
        self._crash_streak_alert(number)
