"""`autolab lr-find`: the learning-rate range test, with a plot and a suggested value."""

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from autolab.errors import UsageError
from autolab.harness.files import METRICS_FILE
from autolab.sandbox.availability import add_isolation_argument, isolation_from_args
from autolab.workspace import load_workspace, prepare_data

SWEEPS_DIR = "lr-find"  # under .autolab/: a sweep is not a training run, never the last run


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lr-find",
        help="learning-rate range test: loss against a rising learning rate, and a suggestion",
        description="Train with the recipe's learning rates multiplied by a factor rising "
        "exponentially from 1e-3 to 1e2 over a few hundred steps, plot the loss against it and "
        "suggest a multiplier.",
    )
    parser.add_argument("--steps", type=int, default=300, help="steps of the sweep")
    parser.add_argument("--out", type=Path, help="the plot (default .autolab/lr-find.png)")
    parser.add_argument("--device", help="auto | cpu | cuda; default from autolab.toml")
    add_isolation_argument(parser)
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from autolab.commands.train import resolve_cli_device
    from autolab.experiment import run_experiment
    from autolab.harness.settings import RunSettings
    from autolab.lr_find import plot_sweep, read_sweep
    from autolab.research.constants import parse_constants

    if args.steps < 20:
        raise UsageError("--steps must be at least 20")
    console = Console(highlight=False)
    workspace = load_workspace(args.workspace)
    data = prepare_data(workspace)
    run_dir = workspace.state_dir / SWEEPS_DIR / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    settings = RunSettings(
        data_dir=data.data_dir,
        run_dir=run_dir,
        budget_seconds=workspace.budget_seconds,
        device=resolve_cli_device(args.device or workspace.device),
        seed=workspace.seed,
        lr_find_steps=args.steps,
    )
    console.print(f"sweeping the learning rate over {args.steps} steps; log: {run_dir}/run.log")
    with console.status("training with a rising learning rate..."):
        result = run_experiment(
            workspace.train_py, settings, data.val_path,
            wall_limit=max(600.0, workspace.budget_seconds * 10), score=False,
            isolation=isolation_from_args(args),
        )  # fmt: skip
    if result.status != "ok":
        raise UsageError(f"the sweep ended {result.status}: {result.reason}; see {run_dir}/run.log")
    sweep = read_sweep(run_dir / METRICS_FILE)
    out = args.out or workspace.state_dir / "lr-find.png"
    plot_sweep(sweep, out, f"{workspace.root.name}: learning-rate range test")
    console.print(
        f"suggested multiplier ×{sweep.suggested:.3g}: half the lowest-loss point "
        f"×{sweep.lowest:.3g} (the loss fell fastest at ×{sweep.steepest:.3g}, early progress)"
    )
    table = Table()
    table.add_column("constant")
    table.add_column("now", justify="right")
    table.add_column("suggested", justify="right")
    for name, constant in parse_constants(workspace.train_py.read_text()).items():
        if (name.endswith("_LR") or name == "LEARNING_RATE") and constant.kind == "float":
            table.add_row(name, f"{constant.value:.3g}", f"{constant.value * sweep.suggested:.3g}")
    console.print(table)
    console.print(f"plot: {out}")
    return 0
