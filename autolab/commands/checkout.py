"""`autolab checkout N|best`: write an experiment's train.py into the workspace, to continue
from it. Only train.py changes: no branch moves, nothing is staged.

It refuses (one line, exit 2) to overwrite a train.py whose content nothing keeps (neither
HEAD nor any experiment's preserved commit), unless --force: a person's edit that was never
trained or committed would be lost.
"""

import os
import tempfile
from pathlib import Path

from autolab.errors import UsageError
from autolab.manual import preserve
from autolab.manual.select import SELECTORS, pick
from autolab.track.ledger import Ledger, require_ledger
from autolab.workspace import TRAIN_FILE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "checkout",
        help="write an experiment's train.py into the workspace (N, best, baseline, last)",
        description="Replace the workspace's train.py with the one experiment N trained "
        f"({SELECTORS}); the branch and the staging area are left alone.",
    )
    parser.add_argument("experiment", metavar="N", help="e.g. best, or 12")
    parser.add_argument(
        "--force", action="store_true", help="overwrite changes to train.py nothing keeps"
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    root = Path(args.workspace).resolve()
    require_ledger(root)
    preserve.require_repo(root)
    with Ledger.for_workspace(root) as ledger:
        view = pick(ledger, args.experiment)
        commits = [v.commit_sha for v in ledger.experiments() if v.commit_sha]
    source = preserve.train_py_at(root, view.commit_sha)
    path = root / TRAIN_FILE
    current = _read(path)
    score = f", {view.score:.4f}" if view.score is not None else ""
    label = f"exp {view.number}'s ({view.status}{score}: {' '.join(view.description.split())})"
    if current == source:
        print(f"train.py is already {label}")
        return 0
    if current is not None and not args.force and not _kept(root, current, commits):
        raise UsageError(
            "train.py has changes that no commit and no experiment keeps: `autolab train` "
            "records them, `git commit` keeps them, or `autolab checkout --force` drops them"
        )
    _write(path, source)
    print(f"train.py is now {label}; `autolab train` runs it")
    return 0


def _kept(root: Path, source: str, commits: list[str]) -> bool:
    head = preserve.head_or_none(root)
    blob = preserve.blob_of(root, source)
    return blob in preserve.blobs_at(root, ([head] if head else []) + commits)


def _read(path: Path) -> str | None:
    try:
        with open(path, newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path: Path, source: str) -> None:
    """A temporary file renamed over train.py, with its mode: never half a file."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".train.py.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(source)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
