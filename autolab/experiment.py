"""Run one experiment: train.py in its own process under hard limits, and the sealed score.

In the sandbox on a CPU the sealed score starts as soon as the scored program is handed over,
while the training process still exports its sampler (autolab.evaluation.early); otherwise
once the training process has ended.

This is the one path both `autolab train` and `autolab research` use. The training process
gets the public data and a run directory, nothing else: its environment names neither the
validation split nor autolab's data home. Its outcome is data (`ExperimentResult`), never an
exception: crash, timeout and invalid are states with a reason.
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from autolab.evaluation.early import EarlyScoring
from autolab.evaluation.launcher import SealedEvaluator
from autolab.hardware import fingerprint
from autolab.harness.clock import MAX_EXCLUDED_FRACTION
from autolab.harness.files import METRICS_FILE, MODEL_FILE, RESULT_FILE
from autolab.harness.settings import RunSettings
from autolab.sandbox import compile_cache
from autolab.sandbox.availability import choose_isolation, warn_on_stderr
from autolab.sandbox.layout import INNER_DATA, INNER_RUN, inner_environment
from autolab.workers import Workers
from autolab.zygote.client import base_environment

LOG_FILE = "run.log"
POLL_SECONDS = 0.1  # also how soon a handed-over program is seen (early.py)
GAP_TOLERANCE = 0.25  # bits per byte between what train.py printed and the sealed score; the
# printed one is measured on the dev split, which differs from val by up to ~0.1 honestly
# Beyond its budget (and the warm-up its clock may leave out), a training process gets this
# long for start-up, the dev estimate and the export: see time_allowed.
ALLOWANCE_FRACTION = 0.1
ALLOWANCE_FLOOR_S = 10.0
# What a full disk looks like in a log or an error: the OS's ENOSPC message, SQLite's, git's.
DISK_FULL_MARKERS = ("no space left on device", "database or disk is full", "out of diskspace")
DISK_FULL_REASON = "the disk is full"
# A crash with less free space than this where the run writes is put down to the disk: when the
# disk is full the training process often cannot even write its traceback to the log.
DISK_FULL_FREE_BYTES = 2**20
OOM_MARKERS = ("out of memory", "outofmemoryerror", "cannot allocate memory", "memoryerror")


@dataclass
class ExperimentResult:
    status: str  # ok | crash | timeout | invalid | interrupted | pruned (research.pruning)
    reason: str = ""
    val_bpb: float | None = None  # the sealed score
    reported: dict = field(default_factory=dict)  # what train.py reported (its result.json)
    wall_seconds: float = 0.0
    flags: dict = field(default_factory=dict)
    run_dir: Path | None = None
    isolation: str = ""  # sandbox | process: what kept this run from the referee

    @property
    def disk_full(self) -> bool:
        """It crashed because the disk is full: nothing about the change, everything about the
        machine, and the next experiment would end the same way."""
        return self.status == "crash" and self.reason.startswith(DISK_FULL_REASON)

    def summary(self) -> dict:
        """The summary block autolab prints: the sealed val_bpb, the rest as train.py reported."""
        values = dict(self.reported)
        values["val_bpb"] = self.val_bpb
        values["total_seconds"] = self.wall_seconds
        for key in ("startup_seconds", "handover_seconds"):
            if key in self.flags:
                values[key] = self.flags[key]
        if self.isolation:
            values["isolation"] = self.isolation
        if self.reported.get("val_bpb") is not None:
            values["reported_val_bpb"] = self.reported["val_bpb"]
        return values


def time_allowed(budget_seconds: float) -> float:
    """Seconds a training process may take from its start to handing its model over.

    The budget; the warm-up steps the harness's clock may leave out of it (compilation, at most
    MAX_EXCLUDED_FRACTION of the budget, timed by the harness itself); and an allowance for
    start-up, the dev estimate and the export: ALLOWANCE_FRACTION of the budget, at least
    ALLOWANCE_FLOOR_S. Whatever a script does before its first batch or after its last step
    counts here: past this the run is a timeout."""
    warm_up = MAX_EXCLUDED_FRACTION * budget_seconds
    return budget_seconds + warm_up + max(ALLOWANCE_FLOOR_S, ALLOWANCE_FRACTION * budget_seconds)


def sealed_timeout(wall_limit: float) -> float:
    """How long the sealed evaluator may take for a run allowed `wall_limit` seconds."""
    return max(120.0, wall_limit)


def training_environment(settings: RunSettings) -> dict[str, str]:
    """The parent's environment without autolab's own variables, plus the run's settings."""
    return {**base_environment(), **settings.to_env()}


class ValReadDetector:
    """Notices a read of the sealed validation shard while an experiment runs (process
    isolation only: in the sandbox the shard is not there to read).

    Before the run the shard's access time is set to before its modification time; on this
    kind of mount (relatime) any read then moves it forward. Unavailable on noatime mounts,
    and blind to reads that do not move atime (a memory map already open, O_NOATIME).
    """

    def __init__(self, val_path: Path):
        self.path = val_path
        stat = val_path.stat()
        self.armed_atime = stat.st_mtime - 1000
        os.utime(val_path, (self.armed_atime, stat.st_mtime))

    def was_read(self) -> bool:
        return self.path.stat().st_atime > self.armed_atime + 1


def workers_for(
    train_py: Path, data_dir: Path, device: str, val_path: Path | None, isolation: str | None = None
) -> Workers:
    """Zygotes for running `train_py` on `data_dir` and `device` (not started), with
    `isolation` (default: the sandbox where available); the sealed split and the workspace are
    what the experiment's sandbox must not show."""
    isolation = isolation or choose_isolation(None, warn_on_stderr)
    hidden = [Path(train_py).resolve().parent] + ([val_path.parent] if val_path else [])
    return Workers(isolation, data_dir, val_path, device, hidden)


def run_experiment(
    train_py: Path,
    settings: RunSettings,
    val_path: Path | None,
    wall_limit: float | None = None,
    on_metrics: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    score: bool = True,
    workers: Workers | None = None,
    isolation: str | None = None,
) -> ExperimentResult:
    """Run train.py once and, when `score`, score what it handed over in the sealed evaluator.

    The training process and the evaluator are forked from `workers`' zygotes, which have torch
    imported already; the research loop keeps them for the whole session. Without them, a run
    starts its own with `isolation` (sandbox where available) and pays the import once.
    `wall_limit`, a person's choice, replaces the time a run of this budget is allowed
    (`time_allowed`); nothing the experiment does can change either. `val_path` is None where
    the sealed split is not on this machine (a Ray node, autolab.cluster): nothing to score
    with, nor to watch for reads of."""
    if workers is None:
        with workers_for(train_py, settings.data_dir, settings.device, val_path, isolation) as own:
            own.start()
            return run_experiment(
                train_py, settings, val_path, wall_limit, on_metrics, should_stop, score, own
            )
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    limit = wall_limit or time_allowed(settings.budget_seconds)
    scoring_timeout = sealed_timeout(limit)
    zygote = workers.training()
    sandbox = zygote.sandbox
    detector = None if sandbox or val_path is None else ValReadDetector(val_path)
    evaluator = early = None
    if score and val_path is not None:
        evaluator = SealedEvaluator(settings, val_path, workers.evaluator(), workers.sealed_hashes)
    if sandbox:
        sandbox.reset()  # nothing the previous experiment left carries over
        inner = replace(settings, data_dir=INNER_DATA, run_dir=INNER_RUN)
        script = sandbox.stage_script(train_py)
        # ...but torch.compile's cache, as runs of autolab's own recipe code wrote it.
        compile_cache.seed(sandbox.staging / "tmp", sandbox.staged_script)
        job = {
            "script": str(script),
            "cwd": str(INNER_RUN),
            "log": str(INNER_RUN / LOG_FILE),
            "env": inner_environment(training_environment(inner)) | compile_cache.environment(),
        }
        watched = sandbox.run_dir
        # The sealed score starts while train.py still exports its sampler; not on a GPU,
        # where the training process holds its memory until it ends and an evaluator beside
        # it could run out (and call an honest run invalid).
        if evaluator and settings.scoring_device == "cpu":
            early = EarlyScoring(watched, run_dir, evaluator, scoring_timeout)
    else:
        job = {
            "script": str(Path(train_py).resolve()),
            "cwd": str(run_dir),
            "log": str(run_dir / LOG_FILE),
            "env": training_environment(settings),
        }
        watched = run_dir
    process = zygote.spawn("train", job)
    started = time.time()
    try:
        watch = _supervise(process, watched, limit, started, on_metrics, should_stop,
                           on_poll=early.poll if early else None)  # fmt: skip
        process_seconds = time.time() - started
        if sandbox:
            zygote.clear()  # everything the experiment started, setsid or not, dies here
            sandbox.collect(run_dir, taken=early.taken if early else ())
            compile_cache.carry_over(sandbox.staging / "tmp", sandbox.staged_script)
        log_path = run_dir / LOG_FILE
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        reported = read_reported(run_dir)
        result = watch.outcome or _classify_exit(process.returncode, log_text, reported)
        if result.status == "crash" and not result.disk_full and _disk_nearly_full(run_dir):
            reason = f"{DISK_FULL_REASON} ({run_dir}): {result.reason}"[:500]
            result = ExperimentResult("crash", reason, reported=result.reported)
        if zygote.died:
            reason = (
                "the process train.py was forked from died while it ran (killed from inside "
                "the run, or out of memory)"
            )
            result = ExperimentResult("invalid", reason, reported=result.reported)
        if result.status == "ok" and detector and detector.was_read():
            result = ExperimentResult("invalid", "read the sealed validation split during training")
        if result.status == "ok" and evaluator:
            scored_early = early and early.started
            verdict = early.verdict if scored_early else partial(evaluator.score, scoring_timeout)
            result = _score_sealed(result, settings, verdict)
    finally:
        process.kill()  # a no-op once it has exited
        if early:
            early.cancel()  # a no-op once it has scored
        elif evaluator:
            evaluator.cancel()
    result.run_dir = run_dir
    result.isolation = workers.isolation
    result.flags.update(watch.timing(process_seconds))
    result.flags["hardware"] = fingerprint(settings.device, threads=settings.threads)
    result.wall_seconds = time.time() - started
    return result


@dataclass
class _Watch:
    """What the runner saw of a training process: how it ended, if the runner ended it, and
    when its first and last step records arrived (its own clock is the experiment's word;
    these times are the runner's)."""

    outcome: ExperimentResult | None = None
    first_step_after: float | None = None  # seconds from the start to the first step record
    last_step_after: float | None = None

    def timing(self, process_seconds: float) -> dict:
        """Time outside training, as the runner saw it: before the first step record and
        after the last one, to the handover."""
        if self.first_step_after is None or self.last_step_after is None:
            return {}
        return {
            "startup_seconds": round(self.first_step_after, 2),
            "handover_seconds": round(max(0.0, process_seconds - self.last_step_after), 2),
        }


def _supervise(process, run_dir, limit, started, on_metrics, should_stop, on_poll=None) -> _Watch:
    """Wait for the process, streaming its metrics; kill it at the limit or on stop.
    `on_poll` is called every POLL_SECONDS while it runs."""
    metrics = _MetricsTail(run_dir / METRICS_FILE)
    watch = _Watch()

    def read() -> None:
        records = metrics.read_new()
        if records:
            now = time.time() - started
            if watch.first_step_after is None:
                watch.first_step_after = now
            watch.last_step_after = now
        for record in records:
            if on_metrics:
                on_metrics(record)

    while not _ended_within(process, POLL_SECONDS):  # returns as the exit is reported
        read()
        if on_poll:
            on_poll()
        if time.time() - started > limit:
            process.kill()
            reason = (
                f"ran past its time limit of {limit:.0f}s from start to handover (budget, "
                "warm-up, start-up and export)"
            )
            watch.outcome = ExperimentResult("timeout", reason)
            return watch
        if should_stop and should_stop():
            process.kill()
            watch.outcome = ExperimentResult("interrupted", "stopped by the user")
            return watch
    read()
    return watch


def _ended_within(process, seconds: float) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


class _MetricsTail:
    """Reads the complete lines appended to the run's metrics file since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        records = []
        for line in chunk[:end].splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a malformed line from the experiment is its problem, not ours
        return records


def _disk_nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path).free < DISK_FULL_FREE_BYTES
    except OSError:
        return False


def read_reported(run_dir: Path) -> dict:
    """What the run reported of itself: the result.json the harness writes in `run.finish`, at
    full precision (the printed summary block rounds, and is for people and grep). {} when
    there is none (it ended before finishing) or it is not a JSON object: the experiment's
    own output, and only the sealed score counts."""
    path = run_dir / RESULT_FILE
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _classify_exit(returncode: int, log_text: str, reported: dict) -> ExperimentResult:
    if returncode == 0:
        return ExperimentResult("ok", reported=reported)
    lines = [line for line in log_text.splitlines() if line.strip()]
    fail = next((line for line in reversed(lines) if line.startswith("FAIL:")), None)
    if fail:
        return ExperimentResult("crash", fail[len("FAIL:") :].strip(), reported=reported)
    tail = " | ".join(line.strip() for line in lines[-3:])
    if any(marker in log_text.lower() for marker in DISK_FULL_MARKERS):
        return ExperimentResult("crash", f"{DISK_FULL_REASON}: {tail}"[:500], reported=reported)
    if any(marker in log_text.lower() for marker in OOM_MARKERS):
        return ExperimentResult("crash", f"out of memory: {tail}"[:500], reported=reported)
    if returncode < 0:
        reason = f"killed by signal {-returncode}"
        return ExperimentResult("crash", f"{reason}: {tail}"[:500], reported=reported)
    return ExperimentResult("crash", f"exit code {returncode}: {tail}"[:500], reported=reported)


def _score_sealed(result, settings: RunSettings, sealed_verdict: Callable[[], dict]):
    if not (settings.run_dir / MODEL_FILE).exists():
        reason = "train.py ended without handing over a model (it must call run.finish)"
        result.status, result.reason = "invalid", reason
        return result
    verdict = sealed_verdict()
    if verdict["status"] != "ok":
        result.status, result.reason = verdict["status"], verdict["reason"]
        if verdict.get("sealed_changed"):
            result.flags["sealed_changed"] = True  # no later score can be trusted either
        return result
    result.val_bpb = verdict["val_bpb"]
    reported = result.reported.get("val_bpb")
    if isinstance(reported, int | float) and abs(reported - result.val_bpb) > GAP_TOLERANCE:
        result.flags["reported_gap"] = round(reported - result.val_bpb, 6)
    return result
