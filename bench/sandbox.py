"""What the sandbox costs an experiment: overhead per run with and without it, side by side.

The default gpt recipe on names trains `--runs` times with each isolation, interleaved
(process, sandbox, process, ...), each isolation with warm zygotes kept for all its runs as a
research session keeps them. Overhead is a run's wall time minus its training time: start-up,
the staging copy, the export, the clean-up and the sealed score.

    .venv/bin/python bench/sandbox.py                      # 20 s budget, 4 runs each
    .venv/bin/python bench/sandbox.py --budget 5 --runs 2

Run it alone on the machine (`flock /tmp/cpu.lock ...`): on 2 cores anything else running
spoils both columns.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.data import prepare  # noqa: E402
from autolab.experiment import run_experiment  # noqa: E402
from autolab.harness.settings import RunSettings  # noqa: E402
from autolab.sandbox import sandbox_unavailable  # noqa: E402
from autolab.workers import Workers  # noqa: E402

NAMES = REPO.parent / "shared" / "data" / "names.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    if sandbox_unavailable():
        raise SystemExit(f"no sandbox here: {sandbox_unavailable()}")
    scratch = Path(tempfile.mkdtemp(prefix="autolab-bench-sandbox-"))
    data = prepare(str(NAMES), "char", lines=True, home=str(scratch / "home"))
    workspace = scratch / "ws"
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace)],
        check=True, capture_output=True, env={"AUTOLAB_HOME": str(scratch / "home"),
                                              "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    train_py = workspace / "train.py"
    workers = {
        isolation: Workers(isolation, data.data_dir, data.val_path, "cpu")
        for isolation in ("process", "sandbox")
    }
    for pool in workers.values():
        pool.start()
    overhead: dict[str, list[float]] = {name: [] for name in workers}
    scores: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for run in range(args.runs):
            for isolation, pool in workers.items():
                settings = RunSettings(
                    data.data_dir, scratch / f"{isolation}-{run}", args.budget, "cpu", seed=run
                )
                result = run_experiment(train_py, settings, data.val_path, workers=pool)
                if result.status != "ok":
                    raise SystemExit(f"{isolation} run {run}: {result.status}: {result.reason}")
                trained = float(result.reported["training_seconds"])
                overhead[isolation].append(result.wall_seconds - trained)
                scores[isolation].append(result.val_bpb)
                print(
                    f"{isolation:8s} run {run}: wall {result.wall_seconds:6.2f}s  trained "
                    f"{trained:6.2f}s  overhead {result.wall_seconds - trained:5.2f}s  "
                    f"val_bpb {result.val_bpb:.4f}",
                    flush=True,
                )
    finally:
        for pool in workers.values():
            pool.close()
    medians = {name: statistics.median(values) for name, values in overhead.items()}
    print(
        f"\nmedian overhead per run at {args.budget:g}s ({args.runs} runs each): "
        f"process {medians['process']:.2f}s, sandbox {medians['sandbox']:.2f}s, "
        f"added by the sandbox {medians['sandbox'] - medians['process']:+.2f}s"
    )


if __name__ == "__main__":
    main()
