"""An experiment's constants, read from train.py at its commit, and the experiment page's params
table: each constant beside its parent's value, the changed ones marked.

The commit is the truth for every researcher (the ledger's `params` is what a proposal said,
and baselines and hand-written proposals have none), so both this table and the what-mattered
view read the constants from git. Commits never change: each is parsed once.
"""

import threading
from pathlib import Path

from autolab import gitrepo
from autolab.research.constants import Constant, parse_constants
from autolab.track.ledger import ExperimentView
from autolab.workspace import TRAIN_FILE


class ConstantsAt:
    """train.py's constants at a commit, cached; None when the commit or file cannot be read
    or parsed (a crash that broke the syntax still has a commit)."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._cache: dict[str, dict[str, Constant] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, commit: str) -> dict[str, Constant] | None:
        if not commit:
            return None
        with self._lock:
            if commit in self._cache:
                return self._cache[commit]
        try:
            found = parse_constants(gitrepo.show_file(self.repo, commit, TRAIN_FILE))
        except (gitrepo.GitError, SyntaxError, ValueError):
            found = None
        with self._lock:
            self._cache[commit] = found
        return found


def parent_number(view: ExperimentView, views: list[ExperimentView]) -> int | None:
    """The latest earlier experiment whose commit is `view`'s parent commit (not a re-check,
    which re-runs a commit rather than making it)."""
    earlier = [
        v for v in views
        if v.number < view.number and v.kind != "recheck" and v.commit_sha == view.parent_commit
    ]  # fmt: skip
    return earlier[-1].number if earlier else None


def params_table(
    mine: dict[str, Constant] | None, parent: dict[str, Constant] | None
) -> list[dict]:
    """One row per constant, in the file's order: its text as written, the parent's, and
    whether it changed (added and removed constants count as changed)."""
    if mine is None:
        return []
    rows = []
    for name, c in mine.items():
        before = parent.get(name) if parent is not None else None
        rows.append({
            "name": name,
            "value": c.text,
            "kind": c.kind,
            "comment": c.comment.strip(),
            "parent": before.text if before is not None else None,
            "changed": parent is not None and (before is None or _differ(before, c)),
        })  # fmt: skip
    for name, c in (parent or {}).items():
        if name not in mine:
            rows.append({"name": name, "value": None, "kind": c.kind, "comment": "",
                         "parent": c.text, "changed": True})  # fmt: skip
    return rows


def _differ(a: Constant, b: Constant) -> bool:
    """By value where both have one (`0.10` is `0.1`), else by the text as written."""
    if "derived" in (a.kind, b.kind):
        return a.text != b.text
    return a.value != b.value
