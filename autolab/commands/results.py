"""`autolab results`: the workspace's experiments, as a table, results.tsv or JSON."""

import argparse
import json
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autolab.track.ledger import ExperimentView, Ledger, require_ledger
from autolab.track.results_tsv import format_results_tsv

STATUS_STYLES = {
    "keep": "green",
    "discard": "dim",
    "crash": "red",
    "timeout": "red",
    "invalid": "red",
    "interrupted": "yellow",
    "running": "blue",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "results",
        help="list the experiments in a workspace's ledger",
        description="List the experiments in a workspace's ledger, oldest first.",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--tsv", action="store_true", help="print results.tsv (autoresearch)")
    output.add_argument("--json", action="store_true", help="print a JSON list of experiments")
    parser.add_argument(
        "-C", "--workspace", default=".", metavar="DIR", help="the workspace (default: here)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace)
    require_ledger(workspace)
    with Ledger.for_workspace(workspace) as ledger:
        views = ledger.experiments()
    if args.tsv:
        sys.stdout.write(format_results_tsv(views))
    elif args.json:
        sys.stdout.write(json.dumps([v.to_dict() for v in views], indent=2) + "\n")
    else:
        Console().print(results_table(views))
    return 0


def results_table(views: list[ExperimentView]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("status")
    for name in ("val_bpb", "vs best", "mem GB", "min"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("description", min_width=24, overflow="fold")
    best = None  # lowest val_bpb kept so far, in number order
    for v in views:
        change = ""
        if v.val_bpb is not None and best is not None:
            delta = v.val_bpb - best
            change = f"[green]{delta:+.4f}[/]" if delta < 0 else f"{delta:+.4f}"
        if v.status == "keep" and v.val_bpb is not None:
            best = v.val_bpb if best is None else min(best, v.val_bpb)
        seconds = v.wall_seconds if v.wall_seconds is not None else v.total_seconds
        style = STATUS_STYLES.get(v.status, "")
        table.add_row(
            str(v.number),
            f"[{style}]{v.status}[/]" if style else v.status,
            "" if v.val_bpb is None else f"{v.val_bpb:.6f}",
            change,
            "" if v.peak_memory_mb is None else f"{v.peak_memory_mb / 1024:.1f}",
            "" if seconds is None else f"{seconds / 60:.1f}",
            describe(v),
        )
    if not views:
        table.caption = "no experiments yet"
    return table


def describe(v: ExperimentView) -> str:
    """The description on one line, dimmed for a baseline or a re-check (whose description
    already says so: "baseline (seed 0)", "re-check of exp 5 (seed 1005)")."""
    text = escape(" ".join(v.description.split()))
    return text if v.kind == "candidate" else f"[dim]{text}[/]"
