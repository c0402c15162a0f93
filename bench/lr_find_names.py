"""Does training at `autolab lr-find`'s suggestion do as well as the recipe's own rates?

Runs the range test on a fresh gpt workspace on names, then `autolab train` with the recipe's
learning rates (x1) and with every *_LR constant scaled by the suggestion, for three seeds each,
and prints the sealed val_bpb of each run and the means. CPU-heavy (minutes): a benchmark, not
a test. Run it alone:

    flock /tmp/cpu.lock .venv/bin/python bench/lr_find_names.py --budget 30s
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from autolab.lr_find import read_sweep
from autolab.research.constants import apply_changes, parse_constants


def autolab(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"autolab {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def scale_rates(train_py: Path, factor: float) -> dict:
    source = train_py.read_text()
    rates = {
        name: c.value * factor
        for name, c in parse_constants(source).items()
        if (name.endswith("_LR") or name == "LEARNING_RATE") and c.kind == "float"
    }
    train_py.write_text(apply_changes(source, rates))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="30s", help="training time per run")
    parser.add_argument("--seeds", type=int, default=3, help="runs per rate")
    parser.add_argument("--recipe", default="gpt", help="gpt | mlp")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lr-find-bench-"))
    recipe_ws, suggested_ws = root / "recipe", root / "suggested"
    for ws in (recipe_ws, suggested_ws):
        autolab("init", str(ws), "--recipe", args.recipe, "--budget", args.budget)
    autolab("lr-find", "-C", str(recipe_ws), "--out", str(root / "lr-find.png"))
    (sweep_dir,) = (recipe_ws / ".autolab" / "runs").glob("lr-find-*")
    sweep = read_sweep(sweep_dir / "metrics.jsonl")
    print(f"sweep: suggested x{sweep.suggested:.3g}, lowest x{sweep.lowest:.3g}, "
          f"steepest x{sweep.steepest:.3g}; plot {root / 'lr-find.png'}")  # fmt: skip
    print("suggested rates:", scale_rates(suggested_ws / "train.py", sweep.suggested))
    scores: dict[str, list[float]] = {"recipe x1": [], f"x{sweep.suggested:.3g}": []}
    for seed in range(args.seeds):
        for label, ws in zip(scores, (recipe_ws, suggested_ws), strict=True):
            out = autolab("train", "-C", str(ws), "--seed", str(seed), "--samples", "0")
            bpb = float(re.search(r"^val_bpb:\s+([0-9.]+)", out, re.M).group(1))
            scores[label].append(bpb)
            print(f"seed {seed}  {label:>10}  val_bpb {bpb:.4f}", flush=True)
    for label, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{label:>10}: mean {statistics.mean(values):.4f}  sd {spread:.4f}  {values}")


if __name__ == "__main__":
    main()
