"""What a Ray task runs on a node: one experiment's training, as `autolab train` would run it.

The node writes train.py's text and the shards (checked by hash) to its own disk, trains
through the same runner as a local experiment (autolab.experiment, in the sandbox where bwrap
exists on the node, under the session's isolation rule) and returns the run directory's plain
files with the outcome. It is never told where the sealed split is, and scores nothing.

A Ray worker process runs many tasks: its zygotes stay warm between them (`_WARM`), as a
local session's do, so an experiment pays a fork, not a torch import.
"""

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from autolab.cluster.shards import ShardSet, materialize
from autolab.experiment import run_experiment
from autolab.harness.settings import RunSettings
from autolab.sandbox.availability import choose_isolation
from autolab.workers import Workers

# (isolation, data directory, its inode, device) -> the zygotes this worker process keeps
_WARM: dict[tuple, Workers] = {}


def train(job: dict, shard_refs: list, progress) -> dict:
    """Run one experiment; `job` is RayRunner's, `shard_refs` holds the shards' object."""
    import ray

    attempt = job["attempt"]
    context = ray.get_runtime_context()
    where = {"node_id": context.get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}
    progress.put((attempt, "node", where))
    data_dir = materialize(ShardSet(**job["shards"]), lambda: ray.get(shard_refs[0]))
    scratch = Path(tempfile.mkdtemp(prefix="autolab-ray-run-"))
    try:
        train_py = scratch / "src" / "train.py"
        train_py.parent.mkdir()
        train_py.write_text(job["source"])
        settings = RunSettings(
            data_dir=data_dir,
            run_dir=scratch / "run",
            budget_seconds=job["budget_seconds"],
            device=job["device"],
            seed=job["seed"],
            threads=job.get("threads", 0),
        )
        result = run_experiment(
            train_py,
            settings,
            None,  # the sealed split stays on the driver
            wall_limit=job["wall_limit"],
            on_metrics=lambda record: progress.put((attempt, "metrics", record)),
            score=False,
            workers=_workers(job["isolation"], data_dir, job["device"]),
        )
        files = {
            str(path.relative_to(settings.run_dir)): path.read_bytes()
            for path in sorted(settings.run_dir.rglob("*"))
            if path.is_file() and not path.is_symlink()
        }
        outcome = {
            "status": result.status,
            "reason": result.reason,
            "reported": result.reported,
            "wall_seconds": result.wall_seconds,
            "flags": result.flags,
            "isolation": result.isolation,
        }
        return {"result": outcome, "files": files, "node": where}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _workers(requested: str | None, data_dir: Path, device: str) -> Workers:
    """This worker process's zygotes for the dataset, started on first use. A sandboxed zygote
    shows the data directory it started with, so a rewritten copy (new inode) gets new ones."""
    key = (requested, str(data_dir), data_dir.stat().st_ino, device)
    if key not in _WARM:
        for stale in [k for k in _WARM if k[:2] == key[:2]]:
            _WARM.pop(stale).close()
        warn = lambda message: print(f"autolab node: {message}", file=sys.stderr)  # noqa: E731
        workers = Workers(choose_isolation(requested, warn), data_dir, None, device)
        workers.training()  # no evaluator: nothing is scored here
        _WARM[key] = workers
    return _WARM[key]
