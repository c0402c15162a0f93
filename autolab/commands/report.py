"""`autolab report`: progress.png, report.md and report.html of the latest research session."""

import argparse
from pathlib import Path

from autolab.errors import UsageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the latest session's report (or your runs'): progress chart, markdown, HTML",
        description="Write progress.png, report.md and a self-contained report.html for the "
        "latest research session (with no session, of your `autolab train` runs): scores, "
        "kept changes, the diff of train.py, samples.",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default .autolab/report)"
    )
    parser.add_argument(
        "--samples", type=int, default=5, metavar="N", help="samples from the best model"
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from autolab.report.build import build_report
    from autolab.track.ledger import require_ledger

    workspace = Path(args.workspace)
    require_ledger(workspace)
    if args.samples < 0:
        raise UsageError("--samples must be 0 or more")
    paths = build_report(workspace, args.out, args.samples)
    console = Console(highlight=False)
    for path in paths.values():
        console.print(f"wrote {path}")
    return 0
