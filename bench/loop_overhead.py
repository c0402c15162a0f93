"""What the research loop pays a run beyond its budget: two source trees, sessions interleaved.

Each round runs one short `autolab research` session from this tree and one from a baseline
commit (extracted with `git archive`), each in a new workspace whose train.py has the constants
given with --set (the research benchmark's sessions spend most runs at 4 blocks of width 32).
Per session, over its scored runs, from the ledger: the median of wall − budget, and its two
shares, train.py's own (its total − its training: start-up, dev estimate, export) and
autolab's (wall − train.py's total: the sealed score, the sandbox, the zygote's fork).

    .venv/bin/python bench/loop_overhead.py --baseline 0296dd2
    .venv/bin/python bench/loop_overhead.py --baseline HEAD~2 --rounds 5 --set DEPTH=2

Pruning is off, so every run trains its whole budget. Run it alone on the machine
(`flock /tmp/cpu.lock ...`): on 2 cores anything else running spoils both columns, and rounds
alternate the trees so that a slow spell of the machine falls on both.
"""

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_wall import REPO, autolab, extract  # noqa: E402

sys.path.insert(0, str(REPO))
from autolab.research.constants import apply_changes  # noqa: E402

FIXTURE = ("DEPTH=4", "ASPECT_RATIO=8")
SHARES = ("overhead", "train.py", "autolab")


def set_constants(train_py: Path, assignments: list[str]) -> None:
    """Set train.py's constants as the search researcher edits them (comments kept); a name
    the file lacks, or a value that is not a Python literal, is an error."""
    changes = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        try:
            changes[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise SystemExit(f"--set {assignment}: {value!r} is not a Python literal") from None
    try:
        train_py.write_text(apply_changes(train_py.read_text(), changes))
    except KeyError as err:
        raise SystemExit(f"--set: train.py has no constant {err.args[0]}") from None


def session_overheads(tree: Path, ws: Path, budget: float, env: dict) -> dict[str, float]:
    """Medians over the session's scored runs, read through this tree's `autolab results`."""
    listed = subprocess.run([sys.executable, "-m", "autolab", "results", "--json", "-C", str(ws)],
                            capture_output=True, text=True, check=True, env=env)  # fmt: skip
    runs = [r for r in json.loads(listed.stdout) if r["status"] in ("keep", "discard")]
    if not runs:
        raise SystemExit(f"the session from {tree} scored no run; see {ws}")
    return {
        "runs": len(runs),
        "overhead": statistics.median(r["wall_seconds"] - budget for r in runs),
        "train.py": statistics.median(r["total_seconds"] - r["training_seconds"] for r in runs),
        "autolab": statistics.median(r["wall_seconds"] - r["total_seconds"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git commit to compare this tree with")
    parser.add_argument("--budget", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--experiments", type=int, default=6, help="changes per session")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help=f"train.py constants (default: {' '.join(FIXTURE)})")  # fmt: skip
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "names.txt"))
    args = parser.parse_args()
    if not Path(args.data).is_file():
        parser.error(f"{args.data} is not a file; pass a text file such as names.txt")
    scratch = Path(tempfile.mkdtemp(prefix="autolab-bench-loop-"))
    trees = {"this tree": REPO, args.baseline: extract(args.baseline, scratch / "baseline")}
    env = {**os.environ, "AUTOLAB_HOME": str(scratch / "home")}
    rows: dict[str, list[dict]] = {name: [] for name in trees}
    for round_number in range(args.rounds):
        for name, tree in trees.items():
            ws = scratch / f"ws-{round_number}-{tree.name}"
            autolab(REPO, "init", str(ws), "--dataset", args.data, "--budget",
                    f"{args.budget}s", "--device", "cpu", env=env)  # fmt: skip
            set_constants(ws / "train.py", args.set or list(FIXTURE))
            # --allow-empty: --set may give the recipe's own values, which change nothing.
            commit = ["git", "-C", str(ws), "commit", "-qam", "the fixture", "--allow-empty"]
            subprocess.run(commit, check=True)
            autolab(tree, "research", "-C", str(ws), "--max-experiments", str(args.experiments),
                    "--budget", f"{args.budget}s", "--plain", "--confirm", "0", "--no-prune",
                    "--baseline-runs", "1", "--tag", "overhead", env=env)  # fmt: skip
            rows[name].append(session_overheads(tree, ws, args.budget, env))
        shown = ", ".join(f"{name} {r[-1]['overhead']:.2f} s" for name, r in rows.items())
        print(f"round {round_number + 1}/{args.rounds}: {shown}", flush=True)
    print(f"\n{' '.join(args.set or FIXTURE)}, budget {args.budget:g} s, {args.rounds} sessions "
          f"each, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")  # fmt: skip
    print("| tree | runs | overhead s (per session) | median | train.py's | autolab's |")
    print("|---|---:|---|---:|---:|---:|")
    for name, sessions in rows.items():
        each = ", ".join(f"{s['overhead']:.2f}" for s in sessions)
        med = {k: statistics.median(s[k] for s in sessions) for k in SHARES}
        print(f"| {name} | {sum(s['runs'] for s in sessions)} | {each} | {med['overhead']:.2f} | "
              f"{med['train.py']:.2f} | {med['autolab']:.2f} |")  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
