"""Every option of every command shows its default in -h, and errors are never rich markup."""

import argparse
import subprocess
import sys

from autolab.cli import build_parser, main
from autolab.errors import UsageError


def commands():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_option_says_its_default():
    missing = []
    for name, command in commands().items():
        formatter = command._get_formatter()
        for action in command._actions:
            if not action.option_strings or isinstance(
                action, argparse._HelpAction | argparse._StoreTrueAction
            ):
                continue
            text = formatter._expand_help(action) if action.help else ""
            if "default" not in text:
                missing.append(f"{name} {action.option_strings[-1]}: {text!r}")
    assert not missing, "\n".join(missing)


def test_defaults_are_in_the_printed_help():
    done = subprocess.run([sys.executable, "-m", "autolab", "research", "-h"],
                          capture_output=True, text=True)  # fmt: skip
    text = " ".join(done.stdout.split())
    baseline = "--baseline-runs R baseline runs that measure the reference (default: 2 when"
    for shown in (baseline, "(default: 2.0)", "(default: 0.002)"):
        assert shown in text


def test_an_error_with_brackets_is_printed_as_written(monkeypatch, capsys):
    def fail(args):
        raise UsageError("--tensorboard needs the tensorboard package: pip install "
                         "'autolab[tensorboard]'")  # fmt: skip

    parser = build_parser()
    monkeypatch.setattr("autolab.cli.build_parser", lambda: parser)
    parser.set_defaults(func=fail)
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "error: --tensorboard needs the tensorboard package: pip install 'autolab[tensorboard]'\n"
    )
