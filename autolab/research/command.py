"""`CommandResearcher`: runs an external coding agent CLI once per experiment.

The template is a shell command in which `{prompt}` becomes the shell-quoted prompt text and
`{prompt_file}` the path of a file holding it:

    claude -p {prompt}
    codex exec {prompt}
    aider --yes --message-file {prompt_file} train.py

The agent runs in the workspace, in its own process group, and is killed with its children at
the time limit. It edits train.py in place and writes a one-line description to
`.autolab/description.txt` (or commits with that message). Afterwards the new train.py is read,
and the workspace is put back as it was: train.py restored, any commit the agent made undone
(the loop owns the branch), any other file it changed restored and the proposal rejected.

With `sandbox` isolation (the default where bubblewrap works) the agent runs in a sandbox of
its own (autolab.sandbox.agent): the system read-only, the network on, `train.py` and the
description file the only things it can write, and no view of `.git`, `.autolab/` (the ledger,
the runs) or the autolab home (the sealed split). With `process` isolation it runs with your
permissions and could read or write any of them; run it in a container if that matters.
"""

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.paths import autolab_home
from autolab.research.edits import EditError, SkippedProposal, same_source, validate_train_py
from autolab.research.prompt import build_prompt
from autolab.research.proposal import Proposal, ResearchContext
from autolab.sandbox.agent import agent_command

TRAIN_FILE = "train.py"
STATE_DIR = ".autolab"  # autolab's own files; the agent writes its description here
DESCRIPTION_FILE = f"{STATE_DIR}/description.txt"
AGENT_DIR = f"{STATE_DIR}/agent"  # the prompt and the agent's output, kept for a look later
KILL_GRACE_SECONDS = 3.0
_PLACEHOLDER = re.compile(r"\{prompt(_file)?\}")

AGENT_INSTRUCTIONS = f"""\
Make ONE change to train.py, in the current directory, that you expect to lower val_bpb.
- Edit train.py in place. Do not change, create or delete any other file; do not run training
  (autolab runs and scores it after you finish).
- Keep `from autolab.harness import Run` and the `run.finish(model, context_len=...)` call.
- Do not repeat an experiment from the table above.
- When done, write a one-line description of the change, like a commit message ("increase
  DEPTH from 4 to 6"), to {DESCRIPTION_FILE}, or commit train.py with that line as the message."""


class CommandResearcher:
    name = "command"

    def __init__(self, template: str, timeout: float = 900, isolation: str = "process"):
        if not _PLACEHOLDER.search(template):
            raise UsageError(
                f"the agent command {template!r} has no {{prompt}} or {{prompt_file}}: "
                "write it like `claude -p {prompt}`"
            )
        self.template = template
        self.timeout = timeout
        self.isolation = isolation
        words = shlex.split(template)
        self.command_name = Path(words[0]).name if words else "agent"

    def command_for(self, prompt: str, prompt_file: Path) -> str:
        """The shell command with the placeholders filled in, each in one pass."""
        values = {"{prompt}": shlex.quote(prompt), "{prompt_file}": shlex.quote(str(prompt_file))}
        return _PLACEHOLDER.sub(lambda m: values[m.group(0)], self.template)

    def propose(self, context: ResearchContext) -> Proposal:
        """The agent's train.py as a Proposal; SkippedProposal when there is nothing to run."""
        root = Path(context.workspace).resolve()
        before = _Snapshot(root)
        agent_dir = root / AGENT_DIR
        agent_dir.mkdir(parents=True, exist_ok=True)
        prompt = build_prompt(context, AGENT_INSTRUCTIONS, include_source=False)
        prompt_file = agent_dir / "prompt.md"
        prompt_file.write_text(prompt)
        (root / DESCRIPTION_FILE).unlink(missing_ok=True)
        described = root / DESCRIPTION_FILE  # where the runner reads the agent's description
        command: str | list[str] = self.command_for(prompt, prompt_file)
        scratch = agent_dir / "tmp"
        if self.isolation == "sandbox":
            described = agent_dir / "description.txt"
            described.write_text("")
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            command = agent_command(
                command, root, described, prompt_file, scratch, hidden=[autolab_home()]
            )
        try:
            # The agent edits the current best, whatever the loop left in the working tree.
            (root / TRAIN_FILE).write_text(context.best_source)
            self._run(command, root, agent_dir / "output.log")
            train_py = root / TRAIN_FILE
            source = train_py.read_text() if train_py.is_file() else None
            description = _read_description(described)
        finally:
            # Also after a timeout or Ctrl-C: the workspace is left as the loop had it.
            messages = before.undo_commits()
            others = before.restore_other_files()
            before.restore_train_py()
            (root / DESCRIPTION_FILE).unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)  # nothing carries to its next call
        if others:
            raise SkippedProposal(
                f"the agent changed files other than train.py: {', '.join(others)} (restored)"
            )
        if source is None:
            raise SkippedProposal("the agent deleted train.py")
        if same_source(source, context.best_source):
            raise SkippedProposal("the agent did not change train.py")
        try:
            validate_train_py(source)
        except EditError as err:
            raise SkippedProposal(f"the agent's train.py is not usable: {err}") from err
        description = description or (messages[-1] if messages else "")
        description = description or f"change by {self.command_name}"
        return Proposal(source=source, description=description)

    def _run(self, command: str | list[str], cwd: Path, log_path: Path) -> None:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the kill reaches children
            )
            try:
                code = process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise SkippedProposal(f"agent timed out after {self.timeout:g}s") from None
            except BaseException:  # Ctrl-C: take the agent down with us
                _kill_group(process)
                raise
        if code == 127:
            raise UsageError(
                f"the agent command was not found ({_tail(log_path)}); "
                "check --agent-command and that the agent is installed"
            )
        if code != 0:
            raise SkippedProposal(f"the agent exited with code {code}: {_tail(log_path)}")


def _kill_group(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=KILL_GRACE_SECONDS)
            if sig == signal.SIGTERM:
                # The leader is gone; make sure its children are too.
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _tail(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").strip().splitlines()
    return " ".join(lines[-1].split())[:200] if lines else "no output"


def _read_description(path: Path) -> str:
    if not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    return next((line for line in lines if line), "")[:200]


class _Snapshot:
    """The workspace's git state before the agent ran, and how to put it back."""

    def __init__(self, root: Path):
        self.root = root
        if not (root / ".git").exists():
            raise UsageError(f"{root} is not a git repository: the command researcher needs one")
        self.head = gitrepo.git(root, "rev-parse", "--verify", "-q", "HEAD", check=False) or None
        self.branch = gitrepo.git(root, "symbolic-ref", "-q", "HEAD", check=False) or None
        train_py = root / TRAIN_FILE
        self.train_py = train_py.read_bytes() if train_py.is_file() else None
        # Files already dirty keep their content; a change to them is the agent's.
        self.dirty = {path: _digest(root / path) for path in _changed_paths(root)}
        self.dirty_bytes = {
            path: (root / path).read_bytes() for path in self.dirty if (root / path).is_file()
        }

    def undo_commits(self) -> list[str]:
        """Move the branch back to where it was; the subjects of the agent's commits, oldest
        first. The working tree keeps the agent's files, now as uncommitted changes."""
        if self.head is None:
            return []
        branch = gitrepo.git(self.root, "symbolic-ref", "-q", "HEAD", check=False) or None
        if branch != self.branch and self.branch is not None:
            gitrepo.git(self.root, "symbolic-ref", "HEAD", self.branch)
        head = gitrepo.git(self.root, "rev-parse", "--verify", "-q", "HEAD", check=False)
        messages: list[str] = []
        if head and head != self.head:
            log = gitrepo.git(self.root, "log", "--format=%s", "--reverse", f"{self.head}..{head}")
            messages = [line.strip() for line in log.splitlines() if line.strip()]
        gitrepo.git(self.root, "reset", "-q", "--mixed", self.head)
        return messages

    def restore_other_files(self) -> list[str]:
        """Put back every file but train.py that the agent changed; their paths."""
        changed = []
        for path in _changed_paths(self.root):
            if path == TRAIN_FILE or path.startswith(STATE_DIR + "/"):
                continue
            if path in self.dirty and _digest(self.root / path) == self.dirty[path]:
                continue
            changed.append(path)
            self._restore(path)
        return sorted(changed)

    def _restore(self, path: str) -> None:
        target = self.root / path
        if path in self.dirty_bytes:
            target.write_bytes(self.dirty_bytes[path])
        elif path in self.dirty:  # it was already missing
            target.unlink(missing_ok=True)
        elif self.head and _tracked(self.root, self.head, path):
            gitrepo.git(self.root, "checkout", "-q", self.head, "--", path)
        else:
            target.unlink(missing_ok=True)

    def restore_train_py(self) -> None:
        train_py = self.root / TRAIN_FILE
        if self.train_py is None:
            train_py.unlink(missing_ok=True)
        else:
            train_py.write_bytes(self.train_py)


def _changed_paths(root: Path) -> list[str]:
    """Paths that differ from HEAD or the index, and untracked files not ignored."""
    # Not gitrepo.git: its strip() would eat the first entry's leading status space.
    done = subprocess.run(
        ["git", "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return [entry[3:] for entry in done.stdout.split("\0") if len(entry) > 3]


def _tracked(root: Path, commit: str, path: str) -> bool:
    done = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{path}"], cwd=root, capture_output=True
    )
    return done.returncode == 0


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
