"""What recording adds to `autolab train`: wall time with and without --no-record, side by side.

Recording keeps the exact train.py as a commit under refs/autolab/tried/<n> (git plumbing: a
blob, a tree in a temporary index, a commit, a ref) and writes the experiment, its metrics and
its result to the ledger. The same train.py trains `--runs` times each way, interleaved
(recorded, not recorded, ...), through the real CLI; the table gives the median wall time of
the whole command and its difference.

    .venv/bin/python bench/manual_record.py                 # 1 s budget, 5 runs each
    .venv/bin/python bench/manual_record.py --budget 2 --runs 3

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


def autolab(*args: str, env: dict) -> float:
    """Run `python -m autolab ARGS`; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                          text=True, env=env, cwd=REPO)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"autolab {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--recipe", default="mlp")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="autolab-bench-record-"))
    env = {**os.environ, "AUTOLAB_HOME": str(scratch / "home"), "PYTHONPATH": str(REPO)}
    ws = scratch / "ws"
    autolab("init", str(ws), "--recipe", args.recipe, "--budget", f"{args.budget}s", env=env)
    train = ("train", "-C", str(ws), "--samples", "0")
    autolab(*train, "--no-record", env=env)  # warm the data cache and the page cache
    walls: dict[str, list[float]] = {"recorded": [], "--no-record": []}
    for run in range(args.runs):
        walls["recorded"].append(autolab(*train, env=env))
        walls["--no-record"].append(autolab(*train, "--no-record", env=env))
        print(f"run {run + 1}/{args.runs}: recorded {walls['recorded'][-1]:.2f} s, "
              f"--no-record {walls['--no-record'][-1]:.2f} s", flush=True)  # fmt: skip
    medians = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\n{args.recipe}, budget {args.budget:g} s, {args.runs} runs each, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")  # fmt: skip
    print("| train | median wall s | min | max |\n|---|---:|---:|---:|")
    for name, values in walls.items():
        print(f"| {name} | {medians[name]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    delta = medians["recorded"] - medians["--no-record"]
    print(f"\nrecording adds {delta:+.2f} s to the median run "
          f"({delta / medians['--no-record']:+.1%})")  # fmt: skip
    print(f"of which git plumbing (blob, tree, commit, ref): {plumbing_seconds(ws):.3f} s")


def plumbing_seconds(ws: Path, times: int = 20) -> float:
    """The median time of preserving train.py alone, as a recorded run does it once."""
    sys.path.insert(0, str(REPO))
    from autolab.manual import preserve

    source = (ws / "train.py").read_text()
    seconds = []
    for i in range(times):
        started = time.perf_counter()
        commit, _ = preserve.commit_train_py(ws, source + f"# {i}\n", "bench")
        preserve.keep_ref(ws, 10_000 + i, commit)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


if __name__ == "__main__":
    main()
