"""Helpers for tests that are not fixtures."""

import importlib.util
import math
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autolab import gitrepo
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.workspace import load_workspace

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"test data not found at {SHARED_DATA}")
    return SHARED_DATA


def autolab(*args, home, timeout=600, env=None, **kwargs) -> subprocess.CompletedProcess:
    """`python -m autolab ARGS` as a user runs it, with its own AUTOLAB_HOME (`env`: more
    variables; the rest of subprocess.run's keywords pass through)."""
    return subprocess.run(
        [sys.executable, "-m", "autolab", *args], capture_output=True, text=True,
        env={**os.environ, "AUTOLAB_HOME": str(home), **(env or {})}, timeout=timeout, **kwargs,
    )  # fmt: skip


def race(task, first_is_inside) -> None:
    """task("first") in a thread; once it sets the Event `first_is_inside`, task("second") in
    another, while the first is still at work; then both to their end."""
    first = threading.Thread(target=task, args=("first",))
    first.start()
    assert first_is_inside.wait(10)
    second = threading.Thread(target=task, args=("second",))
    second.start()
    first.join(30)
    second.join(30)


def mlp_workspace(tmp_path: Path, budget: str) -> tuple[Path, Path]:
    """(workspace, AUTOLAB_HOME): `autolab init` of the mlp recipe with `budget` per run, in
    tmp_path/ws with its home in tmp_path/home, as a user makes one."""
    home, root = tmp_path / "home", tmp_path / "ws"
    done = autolab("init", str(root), "--recipe", "mlp", "--budget", budget, home=home)
    assert done.returncode == 0, done.stderr
    return root, home


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def curve(number: int, score: float, steps: int = 40) -> list[dict]:
    """A noisy training curve that ends near `score` (in nats, as a loss)."""
    rng = random.Random(number)
    rows = []
    for step in range(1, steps + 1):
        progress = step / steps
        loss = score * math.log(2) + 2.5 * math.exp(-5 * progress) + rng.gauss(0, 0.08)
        rows.append({
            "step": step, "progress": progress, "loss": loss,
            "lr": 0.01 * min(1, 2 * (1 - progress)),
            "tokens_per_sec": 40_000 + rng.gauss(0, 800), "memory_mb": 300 + 2 * number,
            "training_seconds": 0.05 * step, "time": 1e9 + step, "tokens": 2048 * step,
            "dev_loss": loss + 0.1 if step % (steps // 4) == 0 else None,
        })  # fmt: skip
    return rows


def branch_of_scores(root: Path, scores: list[tuple[float, int, float]]) -> None:
    """One session: a baseline, then a candidate per (LEARNING_RATE, N_HIDDEN, score), each its
    own commit; every other one kept. Each has a training curve of 40 steps: loss, lr,
    tokens, tokens/s, memory, and a dev loss at 1/4, 2/4, 3/4 and the end."""
    ws = load_workspace(root)
    source = ws.train_py.read_text()
    base = gitrepo.head(root)
    with Ledger.for_workspace(root) as ledger:
        sid = ledger.start_session("m", "autolab/m", "search", 2.0, "cpu",
                                   {"base_commit": base, "pid": _dead_pid()})  # fmt: skip
        ledger.add_experiment(ExperimentRecord(1, sid, "baseline", base, "baseline (seed 0)", "",
                                               "search", seed=0))  # fmt: skip
        ledger.add_result(1, ResultRecord("keep", "baseline", 3.0))
        ledger.record_noise(sid, 3.0, 0.01, 1)
        for number, (lr, hidden, score) in enumerate(scores, start=2):
            ws.train_py.write_text(source.replace("LEARNING_RATE = 0.005", f"LEARNING_RATE = {lr}")
                                   .replace("N_HIDDEN = 128", f"N_HIDDEN = {hidden}"))  # fmt: skip
            commit = gitrepo.commit_all(root, f"exp {number}")
            ledger.add_experiment(ExperimentRecord(number, sid, "candidate", commit,
                                                   f"lr {lr}, hidden {hidden}", base, "search",
                                                   seed=0))  # fmt: skip
            status = "keep" if number % 2 else "discard"
            ledger.add_result(number, ResultRecord(status, "", score))
            ledger.add_metrics(number, curve(number, score))
        ledger.end_session(sid, "succeeded")


def load_bench_script(name: str):
    """bench/<name>.py as a module: the benchmarks are scripts, not a package."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
