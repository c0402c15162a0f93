"""The few git operations autolab needs, through the git command line."""

import os
import subprocess
from pathlib import Path

from autolab.errors import UsageError

# Commits made by autolab use this identity unless the repository or user configured one.
IDENTITY = ["-c", "user.name=autolab", "-c", "user.email=autolab@localhost"]


class GitError(RuntimeError):
    pass


def git(
    repo: Path,
    *args: str,
    check: bool = True,
    env: dict | None = None,
    input: str | None = None,
    strip: bool = True,
) -> str:
    """`env` is added to the environment (a temporary index: GIT_INDEX_FILE); `input` is stdin;
    `strip=False` keeps the output exact (a file's content, its last newline included)."""
    full_env = {**os.environ, **env} if env else None
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=False, env=full_env, input=input)  # fmt: skip
    except FileNotFoundError as err:
        raise UsageError("git is not installed: install git and try again") from err
    if check and done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.rstrip() if strip else done.stdout


def has_identity(repo: Path) -> bool:
    return bool(git(repo, "config", "user.email", check=False))


def commit_all(repo: Path, message: str, paths: list[str] | None = None) -> str:
    """Stage `paths` (all changes if None), commit, and return the new commit's sha."""
    git(repo, "add", *(paths or ["-A"]))
    identity = [] if has_identity(repo) else IDENTITY
    git(repo, *identity, "commit", "-q", "--no-verify", "-m", message)
    return head(repo)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def current_branch(repo: Path) -> str:
    return git(repo, "rev-parse", "--abbrev-ref", "HEAD")


def dirty_paths(repo: Path) -> list[str]:
    """Tracked files with changes and untracked files not ignored."""
    out = git(repo, "status", "--porcelain", "--untracked-files=all")
    return [line[3:] for line in out.splitlines() if line.strip()]


def changed_paths(repo: Path, old: str, new: str) -> list[str]:
    return git(repo, "diff", "--name-only", old, new).splitlines()


def show_file(repo: Path, commit: str, path: str) -> str:
    return git(repo, "show", f"{commit}:{path}")
