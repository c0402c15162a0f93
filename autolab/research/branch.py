"""The research branch: each experiment a commit; keep advances it, anything else resets it.

Every tried commit stays reachable under `refs/autolab/tried/<n>` (kept ones too), so no tried
change is ever lost, and a person can `git diff` or check out any of them later.
"""

import shutil
import time
from pathlib import Path

from autolab import gitrepo
from autolab.workspace import TRAIN_FILE

TRIED_REF = "refs/autolab/tried/{number}"
RECOVERED_REF = "refs/autolab/recovered/{stamp}"


def branch_name(tag: str) -> str:
    return f"autolab/{tag}"


def branch_exists(repo: Path, branch: str) -> bool:
    return bool(gitrepo.git(repo, "branch", "--list", branch))


def start_branch(repo: Path, branch: str) -> str:
    """Create `branch` at HEAD and check it out; returns the base commit."""
    gitrepo.git(repo, "checkout", "-q", "-b", branch)
    return gitrepo.head(repo)


def checkout(repo: Path, branch: str) -> None:
    gitrepo.git(repo, "checkout", "-q", branch)


def commit_proposal(repo: Path, source: str, description: str) -> str:
    """Write train.py and commit it with the description as the message."""
    (repo / TRAIN_FILE).write_text(source)
    return gitrepo.commit_all(repo, description, [TRAIN_FILE])


def preserve(repo: Path, number: int, commit: str) -> None:
    gitrepo.git(repo, "update-ref", TRIED_REF.format(number=number), commit)


def reset_to(repo: Path, commit: str) -> None:
    gitrepo.git(repo, "reset", "-q", "--hard", commit)


def tried_commit(repo: Path, number: int) -> str | None:
    sha = gitrepo.git(
        repo, "rev-parse", "-q", "--verify", TRIED_REF.format(number=number), check=False
    )
    return sha or None


def quarantine_changes(repo: Path, keep_dir: Path) -> list[str]:
    """Undo changes an experiment made in the workspace, keeping copies in `keep_dir`.

    Returns the paths it found changed. Modified tracked files are copied then restored from
    HEAD; new untracked files are moved. Nothing is deleted without a copy.
    """
    changed = gitrepo.dirty_paths(repo)
    if not changed:
        return []
    keep_dir.mkdir(parents=True, exist_ok=True)
    tracked = set(gitrepo.git(repo, "ls-files").splitlines())
    for path in changed:
        source = repo / path
        if source.exists():
            target = keep_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copy2 if path in tracked else shutil.move)(source, target)
    restore = [p for p in changed if p in tracked]
    if restore:
        gitrepo.git(repo, "checkout", "-q", "HEAD", "--", *restore)
    return changed


def recover_head(repo: Path, expected: str, keep_dir: Path) -> str | None:
    """Make the branch point at `expected` again after a crash of autolab itself.

    A commit found at the head that no experiment recorded is kept under a recovered ref, and
    uncommitted changes are kept as files in `keep_dir`; returns the ref name, if any.
    """
    quarantine_changes(repo, keep_dir)
    current = gitrepo.head(repo)
    if current == expected:
        return None
    ref = RECOVERED_REF.format(stamp=time.strftime("%Y%m%d-%H%M%S"))
    gitrepo.git(repo, "update-ref", ref, current)
    reset_to(repo, expected)
    return ref


# -- worktrees: where the experiments of `research --workers N` are checked out ---------------


def add_worktree(repo: Path, path: Path, commit: str) -> None:
    """A detached worktree of `repo` at `commit` in `path`; whatever an earlier session (or a
    kill) left there is removed first: its experiments are recorded, or will be on resume."""
    remove_worktree(repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gitrepo.git(repo, "worktree", "add", "-q", "--detach", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    if path.exists():
        gitrepo.git(repo, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)
    gitrepo.git(repo, "worktree", "prune")


def commit_in_worktree(tree: Path, parent: str, source: str, description: str) -> str:
    """Check `parent` out in the worktree `tree`, write train.py and commit it there, detached:
    the research branch does not move until the commit is kept."""
    gitrepo.git(tree, "checkout", "-q", "--force", "--detach", parent)
    (tree / TRAIN_FILE).write_text(source)
    return gitrepo.commit_all(tree, description, [TRAIN_FILE])


def check_out_in_worktree(tree: Path, commit: str) -> None:
    gitrepo.git(tree, "checkout", "-q", "--force", "--detach", commit)


def advance(repo: Path, commit: str) -> None:
    """Keep `commit`: the branch checked out in `repo` moves to it (its only change is
    train.py, so the workspace's train.py becomes the new best)."""
    reset_to(repo, commit)
