"""Run one experiment: train.py in its own process under hard limits, then the sealed score.

This is the one path both `autolab train` and `autolab research` use. The training process
gets the public data and a run directory, nothing else: its environment names neither the
validation split nor autolab's data home. Its outcome is data (`ExperimentResult`), never an
exception: crash, timeout and invalid are states with a reason.
"""

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autolab.evaluation.launcher import SealedEvaluator
from autolab.harness.handover import MODEL_FILE
from autolab.harness.run import METRICS_FILE
from autolab.harness.settings import RunSettings
from autolab.summary import parse_summary
from autolab.zygote.client import Zygote, base_environment

LOG_FILE = "run.log"
POLL_SECONDS = 0.2
GAP_TOLERANCE = 0.25  # bits per byte between what train.py printed and the sealed score; the
# printed one is measured on the dev split, which differs from val by up to ~0.1 honestly
# A training process may take this long beyond its budget (start-up, warm-up steps left out of
# the clock, the dev estimate, the export) before it counts as training past its budget.
OVERRUN_FACTOR = 1.25
OVERRUN_GRACE_SECONDS = 30.0
# What a full disk looks like in a log or an error: the OS's ENOSPC message, SQLite's, git's.
DISK_FULL_MARKERS = ("no space left on device", "database or disk is full", "out of diskspace")
DISK_FULL_REASON = "the disk is full"
# A crash with less free space than this where the run writes is put down to the disk: when the
# disk is full the training process often cannot even write its traceback to the log.
DISK_FULL_FREE_BYTES = 2**20
OOM_MARKERS = ("out of memory", "outofmemoryerror", "cannot allocate memory", "memoryerror")


@dataclass
class ExperimentResult:
    status: str  # ok | crash | timeout | invalid | interrupted
    reason: str = ""
    val_bpb: float | None = None  # the sealed score
    reported: dict = field(default_factory=dict)  # the summary block train.py printed
    wall_seconds: float = 0.0
    flags: dict = field(default_factory=dict)
    run_dir: Path | None = None

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
        if self.reported.get("val_bpb") is not None:
            values["reported_val_bpb"] = self.reported["val_bpb"]
        return values


def default_wall_limit(budget_seconds: float) -> float:
    return budget_seconds * 1.5 + 60


def training_environment(settings: RunSettings) -> dict[str, str]:
    """The parent's environment without autolab's own variables, plus the run's settings."""
    return {**base_environment(), **settings.to_env()}


class ValReadDetector:
    """Notices a read of the sealed validation shard while an experiment runs.

    Before the run the shard's access time is set to before its modification time; on this
    kind of mount (relatime) any read then moves it forward. Unavailable on noatime mounts.
    """

    def __init__(self, val_path: Path):
        self.path = val_path
        stat = val_path.stat()
        self.armed_atime = stat.st_mtime - 1000
        os.utime(val_path, (self.armed_atime, stat.st_mtime))

    def was_read(self) -> bool:
        return self.path.stat().st_atime > self.armed_atime + 1


def run_experiment(
    train_py: Path,
    settings: RunSettings,
    val_path: Path,
    wall_limit: float | None = None,
    on_metrics: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overrun_grace: float = OVERRUN_GRACE_SECONDS,
    score: bool = True,
    zygote: Zygote | None = None,
) -> ExperimentResult:
    """Run train.py once and, when `score`, score what it handed over in the sealed evaluator.

    The training process and the evaluator are forked from `zygote`, which has torch imported
    already; the research loop keeps one for the whole session. Without one, a run starts its
    own and pays the import once."""
    if zygote is None:
        with Zygote() as own:
            return run_experiment(
                train_py, settings, val_path, wall_limit, on_metrics, should_stop,
                overrun_grace, score, own,
            )  # fmt: skip
    started = time.time()
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    wall_limit = wall_limit or default_wall_limit(settings.budget_seconds)
    detector = ValReadDetector(val_path)
    log_path = run_dir / LOG_FILE
    job = {
        "script": str(Path(train_py).resolve()),
        "cwd": str(run_dir),
        "log": str(log_path),
        "env": training_environment(settings),
    }
    process = zygote.spawn("train", job)
    evaluator = SealedEvaluator(settings, val_path, zygote) if score else None
    try:
        outcome = _supervise(process, run_dir, wall_limit, started, on_metrics, should_stop)
        process_seconds = time.time() - started
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        result = outcome or _classify_exit(process.returncode, log_text)
        if result.status == "crash" and not result.disk_full and _disk_nearly_full(run_dir):
            reason = f"{DISK_FULL_REASON} ({run_dir}): {result.reason}"[:500]
            result = ExperimentResult("crash", reason, reported=result.reported)
        if result.status == "ok" and detector.was_read():
            result = ExperimentResult("invalid", "read the sealed validation split during training")
        allowed = settings.budget_seconds * OVERRUN_FACTOR + overrun_grace
        if result.status == "ok" and process_seconds > allowed:
            reason = f"trained past its budget: ran {process_seconds:.0f}s, at most {allowed:.0f}s"
            result = ExperimentResult("invalid", reason, reported=result.reported)
        if result.status == "ok" and evaluator:
            result = _score_sealed(result, settings, evaluator, wall_limit)
    finally:
        process.kill()  # a no-op once it has exited
        if evaluator:
            evaluator.cancel()  # a no-op once it has scored
    result.run_dir = run_dir
    result.wall_seconds = time.time() - started
    return result


def _supervise(process, run_dir, wall_limit, started, on_metrics, should_stop):
    """Wait for the process, streaming its metrics; kill its group at the limit or on stop."""
    metrics = _MetricsTail(run_dir / METRICS_FILE)
    while process.poll() is None:
        time.sleep(POLL_SECONDS)
        for record in metrics.read_new():
            if on_metrics:
                on_metrics(record)
        if time.time() - started > wall_limit:
            process.kill()
            reason = f"killed at the wall-clock limit of {wall_limit:.0f}s"
            return ExperimentResult("timeout", reason)
        if should_stop and should_stop():
            process.kill()
            return ExperimentResult("interrupted", "stopped by the user")
    for record in metrics.read_new():
        if on_metrics:
            on_metrics(record)
    return None


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


def _classify_exit(returncode: int, log_text: str) -> ExperimentResult:
    reported = parse_summary(log_text)
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


def _score_sealed(result, settings: RunSettings, evaluator: SealedEvaluator, wall_limit: float):
    if not (settings.run_dir / MODEL_FILE).exists():
        reason = "train.py ended without handing over a model (it must call run.finish)"
        result.status, result.reason = "invalid", reason
        return result
    verdict = evaluator.score(timeout=max(120.0, wall_limit))
    if verdict["status"] != "ok":
        result.status, result.reason = verdict["status"], verdict["reason"]
        return result
    result.val_bpb = verdict["val_bpb"]
    reported = result.reported.get("val_bpb")
    if isinstance(reported, int | float) and abs(reported - result.val_bpb) > GAP_TOLERANCE:
        result.flags["reported_gap"] = round(reported - result.val_bpb, 6)
    return result
