"""`autolab diff A B`: how train.py changed between two experiments, from their preserved
commits (exactly `git diff A's commit B's commit -- train.py`)."""

import sys
from pathlib import Path

from autolab import gitrepo
from autolab.manual.select import SELECTORS, pick
from autolab.track.ledger import Ledger, require_ledger
from autolab.workspace import TRAIN_FILE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="the train.py diff between two experiments (numbers, best, baseline, last)",
        description="Print the change to train.py between experiments A and B, from the "
        f"commits autolab keeps for every run. A and B: {SELECTORS}.",
    )
    parser.add_argument("a", metavar="A", help="the older side, e.g. best or 3")
    parser.add_argument("b", metavar="B", nargs="?", default="last", help="the newer side")
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    root = Path(args.workspace).resolve()
    require_ledger(root)
    with Ledger.for_workspace(root) as ledger:
        a, b = pick(ledger, args.a), pick(ledger, args.b)
    text = train_py_diff(root, a.commit_sha, b.commit_sha)
    if text:
        sys.stdout.write(text)
    else:
        print(f"no change to train.py between exp {a.number} and exp {b.number}", file=sys.stderr)
    return 0


def train_py_diff(root: Path, old: str, new: str) -> str:
    """`git diff old new -- train.py`, exactly (no colour), "" when train.py is the same."""
    return gitrepo.git(root, "diff", "--no-color", old, new, "--", TRAIN_FILE, strip=False)
