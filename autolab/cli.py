"""The `autolab` command: parses flags and calls the library. Nothing else lives here.

Each subcommand is a module in `autolab.commands` with `register(subparsers)`, which adds its
parser and sets `func` to the function that runs it.
"""

import argparse
import functools
import importlib
import sys

from rich.console import Console
from rich.text import Text

from autolab import __version__
from autolab.errors import UsageError

# Modules, in the order `autolab --help` lists their commands.
COMMANDS = [
    "prepare",
    "init",
    "train",
    "diff",
    "checkout",
    "sample",
    "inspect",
    "lr_find",
    "research",
    "confirm",
    "stop",
    "results",
    "events",
    "status",
    "report",
    "export",
    "dashboard",
]


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default in -h: "(default: X)" is added where the help does not say it.
    An option whose default is None says in its own help what it falls back to (a test checks
    every command's options)."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)".lstrip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autolab",
        description="A local lab for small language models: prepare data, train, research.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"autolab {__version__}")
    subparsers = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter),
    )
    for name in COMMANDS:
        importlib.import_module(f"autolab.commands.{name}").register(subparsers)
    for command in subparsers.choices.values():
        for action in command._actions:
            if action.help is None and action.dest == "workspace":  # every command's -C DIR
                action.help = "the workspace"
            elif action.help is None and action.default is not None and action.default is not False:
                action.help = "(default: %(default)s)"  # argparse shows no line without help
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
        # The message is text, never markup: "pip install 'autolab[tensorboard]'" must survive.
        line = Text.assemble(("error:", "bold red"), f" {err}")
        Console(stderr=True).print(line, highlight=False, soft_wrap=True)
        return err.exit_code
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
