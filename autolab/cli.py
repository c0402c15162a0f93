"""The `autolab` command: parses flags and calls the library. Nothing else lives here.

Each subcommand is a module in `autolab.commands` with `register(subparsers)`, which adds its
parser and sets `func` to the function that runs it.
"""

import argparse
import importlib
import sys

from rich.console import Console

from autolab import __version__
from autolab.errors import UsageError

# Modules, in the order `autolab --help` lists their commands.
COMMANDS = [
    "prepare",
    "init",
    "train",
    "sample",
    "inspect",
    "lr_find",
    "research",
    "stop",
    "results",
    "events",
    "status",
    "report",
    "dashboard",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autolab",
        description="A local lab for small language models: prepare data, train, research.",
    )
    parser.add_argument("--version", action="version", version=f"autolab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"autolab.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UsageError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return err.exit_code
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
