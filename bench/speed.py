"""Speed benchmark: do the recipes reach their targets within the training budget?

Each (recipe, dataset) pair trains `--seeds` times for `--budget` seconds, one run at a time (the
runs share the machine's cores), and the table shows medians over the seeds. Machines differ
several times in speed, so each gpt target is also given as a ratio to a yardstick trained in the
same session on the same data: nanoGPT's "baby GPT" CPU configuration (bench/baby_gpt.py), run as
a train.py through the same `autolab train` and sealed evaluator (recipe `baby-gpt` here). Its
runs alternate with the gpt runs, seed by seed, so a change in the machine's load falls on both.

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
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from other_load import OtherLoad  # noqa: E402

from autolab.data import prepare  # noqa: E402
from autolab.summary import parse_summary  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"  # the default for --data
DATASETS = {"names": "names.txt", "tinyshakespeare": "tinyshakespeare.txt"}  # name -> file
# (recipe, dataset) -> target sealed loss in nats per character at 30 s on 2 cores (issue 11).
TARGETS = {
    ("gpt", "names"): 1.95,
    ("gpt", "tinyshakespeare"): 1.50,
    ("mlp", "names"): 2.10,
}
REFERENCE = "baby-gpt"  # the yardstick's name in the table and in --only
REFERENCE_FILE = REPO / "bench" / "baby_gpt.py"
# dataset -> the most gpt's val_bpb may be as a share of the yardstick's (issue 11).
RATIO_TARGETS = {"names": 0.87, "tinyshakespeare": 0.70}

BUSY_WARNING = 0.1  # warn when other processes used more CPU than this share of the budget
COLUMNS = ("recipe", "dataset", "val_bpb", "nats/char", "target", "", "÷ baby-gpt", "target",
           "", "train s", "overhead s", "tok/s", "steps")  # fmt: skip


def prepare_data(source: Path, home: Path):
    """The text file `source` prepared as char shards under `home` (cached after the first call)."""
    return prepare(dataset=str(source), home=str(home))


def repo_pythonpath() -> str:
    """This checkout first on the children's import path, anything already there after it (a
    lent GPU's image may carry extra packages on PYTHONPATH)."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


def train_once(
    workspace: Path, home: Path, seed: int, device: str = "cpu", isolation: str | None = None
) -> dict:
    """`autolab train` once in `workspace`; its summary values, or {"error": ...}."""
    env = {**os.environ, "AUTOLAB_HOME": str(home), "PYTHONPATH": repo_pythonpath()}
    command = [sys.executable, "-m", "autolab", "train", "-C", str(workspace), "--seed",
               str(seed), "--samples", "0", "--device", device,
               *(["--isolation", isolation] if isolation else [])]  # fmt: skip
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:  # fmt: skip
        # Other processes' CPU time during the run: the cores are shared, and a busy machine
        # slows a 2-thread run down many times over, so such a run's figures mean little.
        load = OtherLoad(child.pid).start()
        stdout, stderr = child.communicate()
        others = load.stop()
    proc = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    summary = parse_summary(proc.stdout)
    if proc.returncode != 0 or "val_bpb" not in summary:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-4:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {' | '.join(last)}", "log": run_log_tail(proc)}
    return {**summary, "other_cpu_seconds": max(0.0, others)}


def make_workspace(recipe: str, source: Path, budget: float, home: Path, root: Path) -> Path:
    """A CPU-sized workspace for `recipe`; the yardstick's is a gpt one with its train.py."""
    workspace = root / f"{recipe}-{source.stem}"
    env = {**os.environ, "AUTOLAB_HOME": str(home), "PYTHONPATH": repo_pythonpath()}
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace), "--device", "cpu",
         "--recipe", "gpt" if recipe == REFERENCE else recipe,
         "--dataset", str(source), "--budget", f"{budget:g}s"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    if recipe == REFERENCE:
        (workspace / "train.py").write_text(REFERENCE_FILE.read_text())
    return workspace


def run_log_tail(proc: subprocess.CompletedProcess, lines: int = 15) -> str:
    """The end of the run.log a failed `autolab train` names: why it failed, usually."""
    named = re.findall(r"log: (\S+run\.log)", proc.stdout + proc.stderr)
    if not named or not Path(named[-1]).exists():
        return ""
    return "\n".join(Path(named[-1]).read_text(errors="replace").splitlines()[-lines:])


def nats_per_char(val_bpb: float, meta: dict, split: str = "val") -> float:
    """Bits per byte -> nats per token; for a char tokenizer on ASCII text, nats per char."""
    bytes_per_token = meta["bytes"][split] / max(meta["tokens"][split], 1)
    return val_bpb * math.log(2) * bytes_per_token


def medians(runs: list[dict]) -> dict:
    """Median of each summary value over runs; overhead is total minus training seconds."""
    runs = [{**r, "overhead_seconds": r["total_seconds"] - r["training_seconds"]} for r in runs]
    keys = ("val_bpb", "training_seconds", "overhead_seconds", "tokens_per_sec", "num_steps")
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def plan(only: list[str] | None) -> list[tuple[str, str]]:
    """(recipe, dataset) pairs to run: the targets, and the yardstick on each gpt dataset."""
    pairs = []
    for recipe, dataset in TARGETS:  # each yardstick run next to its gpt run
        pairs += [(recipe, dataset)] + ([(REFERENCE, dataset)] if recipe == "gpt" else [])
    return [p for p in pairs if not only or "/".join(p) in only]


def run_seeds(pairs, args, home: Path, root: Path, console) -> dict:
    """(recipe, dataset) -> the runs that finished; seed by seed, alternating the pairs."""
    workspaces = {
        (recipe, dataset): make_workspace(
            recipe, args.data / DATASETS[dataset], args.budget, home, root
        )
        for recipe, dataset in pairs
    }
    runs = {p: [] for p in pairs}
    for seed in range(args.seeds):
        for (recipe, dataset), workspace in workspaces.items():
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
            runs[(recipe, dataset)].append({**result, "seed": seed})
    return runs


def ratio(runs: dict, recipe: str, dataset: str) -> float | None:
    """Median over seeds of recipe's val_bpb ÷ the yardstick's, seed by seed (same load)."""
    ours = {r["seed"]: r["val_bpb"] for r in runs.get((recipe, dataset), [])}
    ref = {r["seed"]: r["val_bpb"] for r in runs.get((REFERENCE, dataset), [])}
    paired = [ours[s] / ref[s] for s in ours if s in ref]
    return statistics.median(paired) if paired else None


def verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]FAIL[/]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per target (default 3)")
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds (default 30)")
    choices = ", ".join("/".join(p) for p in plan(None))
    parser.add_argument(
        "--only",
        action="append",
        metavar="RECIPE/DATASET",
        help=f"run only these (repeatable): {choices}",
    )
    parser.add_argument("--home", type=Path, help="AUTOLAB_HOME for prepared data (default: temp)")
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED_DATA,
        help=f"folder holding {' and '.join(DATASETS.values())} (default: {SHARED_DATA})",
    )
    args = parser.parse_args(argv)
    pairs = plan(args.only)
    if not pairs:
        parser.error(f"--only matches nothing; choose from {choices}")

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"recipes on CPU ({cpu_model()}), {args.budget:g} s budget, "
                  f"median of {args.seeds} seeds")  # fmt: skip
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in ("recipe", "dataset", "") else "right")
    all_pass = True
    with tempfile.TemporaryDirectory(prefix="autolab-bench-") as tmp:
        home = args.home or Path(tmp) / "home"
        datasets = {d for _, d in pairs}
        metas = {d: prepare_data(args.data / DATASETS[d], home).meta for d in datasets}
        runs = run_seeds(pairs, args, home, Path(tmp), console)
    for recipe, dataset in pairs:
        done = runs[(recipe, dataset)]
        target = TARGETS.get((recipe, dataset))
        if not done:
            all_pass = False
            table.add_row(recipe, dataset, "crash", "", "", verdict(False))
            continue
        med = medians(done)
        nats = nats_per_char(med["val_bpb"], metas[dataset])
        cells = [f"{med['val_bpb']:.4f}", f"{nats:.4f}"]
        if target is None:
            cells += ["", ""]
        else:
            ok = nats <= target and len(done) == args.seeds
            all_pass &= ok
            cells += [f"{target:.2f}", verdict(ok)]
        rel = ratio(runs, recipe, dataset) if recipe != REFERENCE else None
        rel_target = RATIO_TARGETS.get(dataset) if recipe == "gpt" else None
        if rel is None or rel_target is None:
            cells += [f"{rel:.3f}" if rel else "", "", ""]
        else:
            all_pass &= rel <= rel_target
            cells += [f"{rel:.3f}", f"{rel_target:.2f}", verdict(rel <= rel_target)]
        table.add_row(
            recipe,
            dataset,
            *cells,
            f"{med['training_seconds']:.1f}",
            f"{med['overhead_seconds']:.1f}",
            f"{med['tokens_per_sec']:,.0f}",
            f"{med['num_steps']:.0f}",
        )
    console.print(table)
    return 0 if all_pass else 1


def cpu_model() -> str:
    """The CPU's model name and core count (Linux), for the table's title."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line for line in lines if line.startswith("model name"))
        name = model.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        name = "unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


if __name__ == "__main__":
    sys.exit(main())
