"""Speed benchmark: do the recipes reach their targets within the training budget?

Each (recipe, dataset) pair trains `--seeds` times for `--budget` seconds, one run at a time (the
runs share the machine's cores), and the table shows medians over the seeds:

    .venv/bin/python bench/speed.py                   # all targets, 3 seeds, 30 s each
    .venv/bin/python bench/speed.py --only gpt/names --seeds 1 --budget 10

Data comes from ../shared/data (next to the repository), in a scratch AUTOLAB_HOME. Each run
goes through the real CLI, as a person's would: `autolab init` once per (recipe, dataset), then
`autolab train --seed N`; its score is the summary block autolab prints, with the sealed val_bpb,
and its overhead is total_seconds - training_seconds (start-up, data, export, sealed scoring).
"""

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.data import prepare  # noqa: E402
from autolab.summary import parse_summary  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"
DATASETS = {  # dataset name -> local copy it is prepared from
    "names": SHARED_DATA / "names.txt",
    "tinyshakespeare": SHARED_DATA / "tinyshakespeare.txt",
}
# (recipe, dataset) -> target dev loss in nats per character, from the reference runs in
# DESIGN.md ("Performance anchors"): nanoGPT's small CPU config, makemore's models.
TARGETS = {
    ("gpt", "tinyshakespeare"): 1.88,
    ("gpt", "names"): 2.00,
    ("mlp", "names"): 2.17,
}

BUSY_WARNING = 0.1  # warn when other processes used more CPU than this share of the budget
COLUMNS = ("recipe", "dataset", "val_bpb", "nats/char", "target", "", "train s", "overhead s",
           "tok/s", "steps")  # fmt: skip


def prepare_data(dataset: str, home: Path):
    """`dataset` prepared as char shards under `home` (cached after the first call)."""
    return prepare(dataset=str(DATASETS[dataset]), home=str(home))


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux), else 0."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def train_once(workspace: Path, home: Path, seed: int) -> dict:
    """`autolab train` once in `workspace`; its summary values, or {"error": ...}."""
    env = {**os.environ, "AUTOLAB_HOME": str(home), "PYTHONPATH": str(REPO)}
    busy_before, ours_before = busy_cpu_seconds(), children_cpu_seconds()
    proc = subprocess.run(
        [sys.executable, "-m", "autolab", "train", "-C", str(workspace), "--seed", str(seed),
         "--samples", "0"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    # Other processes' CPU time during the run: the cores are shared, and a busy machine
    # slows a 2-thread run down many times over, so such a run's figures mean little.
    others = busy_cpu_seconds() - busy_before - (children_cpu_seconds() - ours_before)
    summary = parse_summary(proc.stdout)
    if proc.returncode != 0 or "val_bpb" not in summary:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {last[0]}"}
    return {**summary, "other_cpu_seconds": max(0.0, others)}


def make_workspace(recipe: str, dataset: str, budget: float, home: Path, root: Path) -> Path:
    workspace = root / f"{recipe}-{dataset}"
    env = {**os.environ, "AUTOLAB_HOME": str(home), "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace), "--recipe", recipe,
         "--dataset", str(DATASETS[dataset]), "--budget", f"{budget:g}s"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return workspace


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nats_per_char(val_bpb: float, meta: dict, split: str = "val") -> float:
    """Bits per byte -> nats per token; for a char tokenizer on ASCII text, nats per char."""
    bytes_per_token = meta["bytes"][split] / max(meta["tokens"][split], 1)
    return val_bpb * math.log(2) * bytes_per_token


def medians(runs: list[dict]) -> dict:
    """Median of each summary value over runs; overhead is total minus training seconds."""
    runs = [{**r, "overhead_seconds": r["total_seconds"] - r["training_seconds"]} for r in runs]
    keys = ("val_bpb", "training_seconds", "overhead_seconds", "tokens_per_sec", "num_steps")
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per target (default 3)")
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds (default 30)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="RECIPE/DATASET",
        help=f"run only these targets (repeatable): {', '.join('/'.join(k) for k in TARGETS)}",
    )
    parser.add_argument("--home", type=Path, help="AUTOLAB_HOME for prepared data (default: temp)")
    args = parser.parse_args(argv)
    targets = {k: v for k, v in TARGETS.items() if not args.only or "/".join(k) in args.only}
    if not targets:
        parser.error(
            f"--only matches no target; choose from {', '.join('/'.join(k) for k in TARGETS)}"
        )

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"recipes on CPU, {args.budget:g} s budget, median of {args.seeds} seeds")
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in ("recipe", "dataset", "") else "right")
    all_pass = True
    with tempfile.TemporaryDirectory(prefix="autolab-bench-") as tmp:
        home = args.home or Path(tmp) / "home"
        for (recipe, dataset), target in targets.items():
            prepared = prepare_data(dataset, home)
            workspace = make_workspace(recipe, dataset, args.budget, home, Path(tmp))
            runs = []
            for seed in range(args.seeds):
                result = train_once(workspace, home, seed)
                if "error" in result:
                    console.print(f"[red]{recipe}/{dataset} seed {seed}: {result['error']}[/]")
                    continue
                console.print(
                    f"{recipe}/{dataset} seed {seed}: val_bpb {result['val_bpb']:.4f}, "
                    f"{result['num_steps']} steps, {result['tokens_per_sec']:.0f} tok/s"
                )
                if result["other_cpu_seconds"] > BUSY_WARNING * args.budget:
                    console.print(
                        f"[yellow]  warning: other processes used {result['other_cpu_seconds']:.0f}"
                        " CPU seconds during this run; its speed figures are not representative[/]"
                    )
                runs.append(result)
            if not runs:
                all_pass = False
                table.add_row(recipe, dataset, "crash", "", f"{target:.2f}", "[red]FAIL[/]")
                continue
            med = medians(runs)
            nats = nats_per_char(med["val_bpb"], prepared.meta)
            ok = nats <= target and len(runs) == args.seeds
            all_pass &= ok
            table.add_row(
                recipe,
                dataset,
                f"{med['val_bpb']:.4f}",
                f"{nats:.4f}",
                f"{target:.2f}",
                "[green]PASS[/]" if ok else "[red]FAIL[/]",
                f"{med['training_seconds']:.1f}",
                f"{med['overhead_seconds']:.1f}",
                f"{med['tokens_per_sec']:,.0f}",
                f"{med['num_steps']:.0f}",
            )
    console.print(table)
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
