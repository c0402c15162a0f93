"""The driver's side of `autolab research --ray`: each experiment's training as one Ray task.

`RayRunner` is called exactly as autolab.experiment.run_experiment is, and returns the same
`ExperimentResult`; the research loop only chooses which of the two to call. With `--workers N`
it is called from N threads at once (research.parallel), N tasks on the cluster: the metrics
queue they share is sorted into one inbox per attempt. The task asks for
one GPU (CUDA sessions) or `cpus` CPUs, carries train.py's text, the seed, the settings and the
dataset's identity (its cache key and the shards' hashes; the shards themselves go into the
object store once per session). The node hands back the run directory, which lands where a
local run's would, and the driver scores it in its own sealed evaluator.

A task whose worker process or node dies (Ray raises WorkerCrashedError, NodeDiedError...) is
an attempt `interrupted`, recorded in the result's flags ("ray": {"attempts": [...]}), and run
once more, on another node when the cluster has one; a second loss ends the experiment
`interrupted`. Ray's own retries are off, so no attempt goes unrecorded.
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from autolab.cluster import node
from autolab.cluster.shards import ShardSet
from autolab.errors import UsageError
from autolab.evaluation.launcher import SealedEvaluator
from autolab.experiment import ExperimentResult, _score_sealed, sealed_timeout, time_allowed
from autolab.harness.settings import RunSettings
from autolab.workers import Workers

INSTALL_HINT = "pip install 'autolab[ray]'"
# Beyond the run's own limit (which the node enforces): a new worker process starting, its
# zygotes importing torch, the shards arriving. Past it the driver gives the task up.
NODE_START_ALLOWANCE_S = 120.0
RETRIES_AFTER_LOSS = 1
POLL_SECONDS = 0.2
ATTEMPTS_FILE = "ray.jsonl"  # in the run directory: where each attempt ran, as it starts


def import_ray():
    """Ray, or a one-line error naming the install command."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on is an error now: ray.init would retry for minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # auto, local, ray://...: Ray's own lookup answers quickly
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise UsageError(
            f"cannot connect to the Ray cluster at {address!r} ({err.strerror or err}): start "
            "one with `ray start --head`, or give its address to --ray"
        ) from None


@dataclass
class _Attempt:
    """One task's end: the node's outcome and files, or why the node was lost."""

    where: dict
    outcome: dict | None = None
    files: dict | None = None
    lost: str = ""  # the worker or node died: retry
    ended: ExperimentResult | None = None  # the driver ended it (stop, timeout) or it failed


class RayRunner:
    def __init__(
        self,
        address: str,
        data_dir: Path,
        device: str,
        isolation: str | None,
        cpus: float = 1,
        in_flight: int = 1,
    ):
        self.ray = ray = import_ray()
        self.owns_connection = not ray.is_initialized()  # a test may have connected already
        if self.owns_connection:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise UsageError(
                    f"cannot connect to the Ray cluster at {address!r} ({err}): start one with "
                    "`ray start --head`, or give its address to --ray"
                ) from None
        self.device = device
        self.isolation = isolation  # the session's request; each node applies it (node.py)
        self.resources = {"num_gpus": 1} if device.startswith("cuda") else {"num_cpus": cpus}
        # torch threads on the node: the CPUs the task asked Ray for (a GPU task: torch's own)
        self.threads = 0 if device.startswith("cuda") else max(1, int(cpus))
        self._check_resources(in_flight)
        self.shards = ShardSet.of(data_dir)
        self._shard_ref = ray.put(self.shards.read(data_dir))
        from ray.util.queue import Queue

        # Nodes send (attempt, kind, payload) here: where the attempt runs, then its metrics.
        self.progress = Queue(actor_options={"num_cpus": 0})
        self._train = ray.remote(max_retries=0)(node.train)
        self._attempts = 0
        self._lock = threading.Lock()  # the attempt count and the inboxes, across threads
        self._inbox: dict[int, list] = {}  # attempt -> (kind, payload) not yet handed on

    def _check_resources(self, in_flight: int) -> None:
        """Room for every experiment in flight at once: one waiting for a place would spend
        its time limit in Ray's queue."""
        have = self.ray.cluster_resources()
        gpu = "num_gpus" in self.resources
        name, amount = ("GPU", 1) if gpu else ("CPU", self.resources["num_cpus"])
        if have.get(name, 0) < amount * in_flight:
            at_once = f"{in_flight} experiments at once of " if in_flight > 1 else ""
            lower = "--workers or --ray-cpus" if in_flight > 1 else "--ray-cpus"
            raise UsageError(
                f"the Ray cluster has {have.get(name, 0):g} {name}s; {at_once}{amount:g} "
                f"{name}s each need {amount * in_flight:g}: add nodes, or lower {lower}"
            )

    def close(self) -> None:
        self.progress.shutdown()
        if self.owns_connection:
            self.ray.shutdown()

    def __call__(
        self,
        train_py: Path,
        settings: RunSettings,
        val_path: Path,
        wall_limit: float | None = None,
        on_metrics: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        workers: Workers | None = None,
    ) -> ExperimentResult:
        """run_experiment's contract: train on a node, score on this machine with `workers`'
        evaluator (sealed hashes as the session found them)."""
        started = time.time()
        limit = wall_limit or time_allowed(settings.budget_seconds)
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        source = Path(train_py).read_text()
        lost: list[dict] = []
        while True:
            avoid = lost[-1].get("node_id") if lost else None
            attempt = self._run(source, settings, limit, on_metrics, should_stop, avoid)
            if not attempt.lost:
                break
            lost.append({"status": "interrupted", "reason": attempt.lost, **attempt.where})
            if len(lost) > RETRIES_AFTER_LOSS:
                attempt.ended = ExperimentResult(
                    "interrupted", f"lost its Ray worker {len(lost)} times: {attempt.lost}"
                )
                break
        result = attempt.ended or self._received(attempt, settings)
        if result.status == "ok":
            if workers is None:
                raise ValueError("the Ray runner scores with the session's workers")
            evaluator = SealedEvaluator(
                settings, val_path, workers.evaluator(), workers.sealed_hashes
            )
            try:
                verdict = partial(evaluator.score, sealed_timeout(limit))
                result = _score_sealed(result, settings, verdict)
            finally:
                evaluator.cancel()  # a no-op once it has scored
        result.run_dir = settings.run_dir
        result.flags["ray"] = {
            **attempt.where,
            "node_seconds": (attempt.outcome or {}).get("wall_seconds"),
            "attempts": lost,
        }
        result.wall_seconds = time.time() - started
        return result

    def _run(self, source, settings, limit, on_metrics, should_stop, avoid) -> _Attempt:
        """One task, watched from here: its metrics streamed, a stop or the deadline obeyed."""
        with self._lock:
            self._attempts += 1
            number = self._attempts
            self._inbox[number] = []
        try:
            return self._watch(number, source, settings, limit, on_metrics, should_stop, avoid)
        finally:
            with self._lock:  # what arrives for it later is stale
                del self._inbox[number]

    def _watch(self, number, source, settings, limit, on_metrics, should_stop, avoid):
        ray = self.ray
        job = {
            "attempt": number,
            "source": source,
            "seed": settings.seed,
            "threads": self.threads,
            "budget_seconds": settings.budget_seconds,
            "device": settings.device,
            "wall_limit": limit,
            "isolation": self.isolation,
            "shards": {"key": self.shards.key, "hashes": self.shards.hashes},
        }
        options = {**self.resources, "scheduling_strategy": self._elsewhere(avoid)}
        ref = self._train.options(**options).remote(job, [self._shard_ref], self.progress)
        attempt = _Attempt(where={})
        deadline = time.time() + limit + NODE_START_ALLOWANCE_S
        while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
            self._drain(number, attempt, settings.run_dir, on_metrics)
            if should_stop and should_stop():
                ray.cancel(ref, force=True)
                attempt.ended = ExperimentResult("interrupted", "stopped by the user")
                return attempt
            if time.time() > deadline:
                ray.cancel(ref, force=True)
                reason = (
                    f"the Ray task gave nothing back within {limit + NODE_START_ALLOWANCE_S:.0f}s "
                    f"(the run's limit and {NODE_START_ALLOWANCE_S:.0f}s to start on a node)"
                )
                attempt.ended = ExperimentResult("timeout", reason)
                return attempt
        try:
            payload = ray.get(ref)
        except self._lost_errors() as err:
            attempt.lost = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            return attempt
        except ray.exceptions.RayTaskError as err:  # autolab's node code failed, not train.py
            last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            attempt.ended = ExperimentResult("crash", f"on the Ray node: {last}"[:500])
            return attempt
        finally:
            self._drain(number, attempt, settings.run_dir, on_metrics)
        attempt.where = attempt.where or payload["node"]
        attempt.outcome, attempt.files = payload["result"], payload["files"]
        return attempt

    def _drain(self, number, attempt: _Attempt, run_dir: Path, on_metrics) -> None:
        """Hand this attempt's metrics on; note where it runs. What came for another attempt in
        flight waits in its inbox; an attempt that ended is stale."""
        from ray.util.queue import Empty

        with self._lock:
            size = self.progress.qsize()
            try:
                items = self.progress.get_nowait_batch(size) if size else []
            except Empty:
                items = []
            for sender, kind, payload in items:
                if sender in self._inbox:
                    self._inbox[sender].append((kind, payload))
            mine, self._inbox[number] = self._inbox[number], []
        for kind, payload in mine:
            if kind == "node":
                attempt.where = payload
                with open(run_dir / ATTEMPTS_FILE, "a") as f:
                    f.write(json.dumps({"attempt": number, **payload}) + "\n")
            elif kind == "metrics" and on_metrics:
                on_metrics(payload)

    def _received(self, attempt: _Attempt, settings: RunSettings) -> ExperimentResult:
        """The node's outcome, its files written into this machine's run directory."""
        outcome = attempt.outcome
        for name, content in attempt.files.items():
            path = Path(name)
            if path.is_absolute() or ".." in path.parts:
                reason = f"the node handed back a file outside its run directory: {name!r}"
                return ExperimentResult("invalid", reason[:500], reported=outcome["reported"])
            target = settings.run_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return ExperimentResult(
            outcome["status"],
            outcome["reason"],
            reported=outcome["reported"],
            flags=outcome["flags"],
            isolation=outcome["isolation"],
        )

    def _elsewhere(self, avoid: str | None):
        """After a loss, another live node with room, when there is one (soft: if it fills up
        the task may still land anywhere)."""
        if avoid is None:
            return "DEFAULT"
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        name = "GPU" if "num_gpus" in self.resources else "CPU"
        others = [
            n["NodeID"]
            for n in self.ray.nodes()
            if n["Alive"] and n["NodeID"] != avoid and n["Resources"].get(name, 0) >= 1
        ]
        return NodeAffinitySchedulingStrategy(others[0], soft=True) if others else "DEFAULT"

    def _lost_errors(self) -> tuple:
        errors = self.ray.exceptions
        return (
            errors.WorkerCrashedError,
            errors.NodeDiedError,
            errors.LocalRayletDiedError,
            errors.ObjectLostError,
        )
