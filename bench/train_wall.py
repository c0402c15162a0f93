"""What `autolab train` costs from the shell, outside training: two source trees side by side.

The same workspace trains through the real CLI with this tree and with a baseline commit
(extracted with `git archive`), interleaved, after one warm-up run of each; the figure is the
whole command's wall time (start-up, zygotes, data, training, export, sealed score, the printed
samples) and, beside it, that wall time minus the budget.

    .venv/bin/python bench/train_wall.py --baseline aaedf74          # gpt, 5 s, 3 runs each
    .venv/bin/python bench/train_wall.py --baseline HEAD~3 --samples 0 --runs 5

Run it alone on the machine (`flock /tmp/cpu.lock ...`): on 2 cores anything else running
spoils both columns.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def autolab(tree: Path, *args: str, env: dict) -> float:
    """Run `python -m autolab ARGS` from `tree`; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                          text=True, env={**env, "PYTHONPATH": str(tree)}, cwd=tree)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"autolab {' '.join(args)} from {tree} failed:\n{done.stdout}{done.stderr}"
        )
    return seconds


def extract(ref: str, target: Path) -> Path:
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True,
                             check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git commit to compare this tree with")
    parser.add_argument("--budget", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--recipe", default="gpt")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "names.txt"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="autolab-bench-wall-"))
    trees = {"this tree": REPO, args.baseline: extract(args.baseline, scratch / "baseline")}
    env = {**os.environ, "AUTOLAB_HOME": str(scratch / "home")}
    ws = scratch / "ws"
    autolab(REPO, "init", str(ws), "--recipe", args.recipe, "--dataset", args.data, "--budget",
            f"{args.budget}s", "--device", "cpu", env=env)  # fmt: skip
    train = ("train", "-C", str(ws), "--samples", str(args.samples), "--no-record")
    for tree in trees.values():  # the data cache, the page cache, the sandbox's first start
        autolab(tree, *train, env=env)
    walls: dict[str, list[float]] = {name: [] for name in trees}
    for run in range(args.runs):
        for name, tree in trees.items():
            walls[name].append(autolab(tree, *train, env=env))
        shown = ", ".join(f"{name} {values[-1]:.2f} s" for name, values in walls.items())
        print(f"run {run + 1}/{args.runs}: {shown}", flush=True)
    print(f"\n{args.recipe}, budget {args.budget:g} s, {args.samples} samples, {args.runs} runs "
          f"each, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")  # fmt: skip
    print(
        "| tree | median wall s | min | max | median wall − budget s |\n|---|---:|---:|---:|---:|"
    )
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {max(values):.2f} | "
              f"{median - args.budget:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
