"""Preserving the exact train.py a person trained, as a commit under refs/autolab/tried/<n>.

Plumbing only: the blob is hashed into the object store, a tree is built from HEAD's tree plus
that blob in a temporary index (GIT_INDEX_FILE), and a commit whose parent is HEAD points at
it. The user's branch, staging area and working tree are never touched, and the tree need not
be clean: only train.py is taken from it, everything else is HEAD's.
"""

import subprocess
import tempfile
from pathlib import Path

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.research.branch import TRIED_REF
from autolab.workspace import TRAIN_FILE

DEFAULT_MODE = "100644"


def require_repo(repo: Path) -> None:
    inside = gitrepo.git(repo, "rev-parse", "--is-inside-work-tree", check=False)
    if inside != "true":
        raise UsageError(
            f"{repo} is not a git repository: run `git init` there (autolab keeps each train.py "
            "you train as a commit), or train with --no-record"
        )


def head_or_none(repo: Path) -> str | None:
    """HEAD's commit; None in a repository with no commit yet."""
    return gitrepo.git(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False) or None


def commit_train_py(repo: Path, source: str, message: str) -> tuple[str, str]:
    """(commit, parent): a commit of HEAD's tree with train.py = `source`; parent "" when the
    repository has no commit yet. Nothing but the object store changes."""
    parent = head_or_none(repo) or ""
    blob = gitrepo.git(repo, "hash-object", "-w", "--stdin", input=source)
    mode = DEFAULT_MODE
    if parent:
        entry = gitrepo.git(repo, "ls-tree", parent, "--", TRAIN_FILE)
        mode = entry.split()[0] if entry else DEFAULT_MODE
    with tempfile.TemporaryDirectory(prefix="autolab-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent:
            gitrepo.git(repo, "read-tree", parent, env=env)
        gitrepo.git(
            repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{TRAIN_FILE}", env=env
        )
        tree = gitrepo.git(repo, "write-tree", env=env)
    identity = [] if gitrepo.has_identity(repo) else gitrepo.IDENTITY
    parents = ["-p", parent] if parent else []
    commit = gitrepo.git(repo, *identity, "commit-tree", tree, *parents, "-m", message)
    return commit, parent


def keep_ref(repo: Path, number: int, commit: str) -> None:
    gitrepo.git(repo, "update-ref", TRIED_REF.format(number=number), commit)


def train_py_at(repo: Path, commit: str) -> str:
    """The exact train.py of `commit`. Read as bytes: a text pipe would turn CRLF into LF, and
    `autolab checkout` must give back byte for byte what was trained."""
    done = subprocess.run(["git", "cat-file", "blob", f"{commit}:{TRAIN_FILE}"], cwd=repo,
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise UsageError(f"train.py of commit {commit[:7]} is not in the repository: {err}")
    return done.stdout.decode()


def blob_of(repo: Path, source: str) -> str:
    """The blob id `source` has (or would have) in the repository; writes nothing."""
    return gitrepo.git(repo, "hash-object", "--stdin", input=source)


def blobs_at(repo: Path, commits: list[str]) -> set[str]:
    """The train.py blob ids of `commits`, in one git call; commits without one are skipped."""
    if not commits:
        return set()
    lines = "".join(f"{c}:{TRAIN_FILE}\n" for c in commits)
    out = gitrepo.git(
        repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", input=lines, check=False
    )
    return {line.split()[0] for line in out.splitlines() if line.endswith(" blob")}
