"""CommandResearcher with real subprocess "agents" in a real git workspace."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolab.errors import UsageError
from autolab.processes import process_alive
from autolab.research.command import CommandResearcher
from autolab.research.edits import SkippedProposal
from autolab.research.proposal import Outcome, ResearchContext
from autolab.sandbox import sandbox_unavailable

TRAIN_PY = """\
from autolab.harness import Run

DEPTH = 4  # number of blocks

run = Run()
model = build(DEPTH)
run.finish(model, context_len=8)
"""
PROGRAM = "# Research program\nGo lower. Quotes ' \" $HOME `date` survive.\n"
GIT_ID = ["-c", "user.name=test", "-c", "user.email=test@localhost"]

# A Python agent: reads the prompt (from a file or argv), then acts as told by its mode.
AGENT = r"""
import pathlib, subprocess, sys, time

mode, prompt = sys.argv[1], sys.argv[2]
if mode != "argv":
    prompt = pathlib.Path(prompt).read_text()
pathlib.Path(sys.argv[3]).write_text(prompt)  # for the test to look at
train = pathlib.Path("train.py")
deeper = train.read_text().replace("DEPTH = 4", "DEPTH = 6")
git = ["git", "-c", "user.name=agent", "-c", "user.email=agent@localhost"]
if mode in ("file", "argv"):
    train.write_text(deeper)
    pathlib.Path(".autolab/description.txt").write_text("\nincrease DEPTH from 4 to 6\n")
elif mode == "commit":
    train.write_text(deeper)
    subprocess.run(git + ["commit", "-qam", "deeper: DEPTH 6"], check=True)
elif mode == "no-description":
    train.write_text(deeper)
elif mode == "others":
    train.write_text(deeper)
    pathlib.Path("program.md").write_text("easier rules")
    pathlib.Path("notes").mkdir()
    pathlib.Path("notes/new.txt").write_text("hi")
    pathlib.Path("README").unlink()
elif mode == "commit-others":
    train.write_text(deeper)
    pathlib.Path("program.md").write_text("easier rules")
    subprocess.run(git + ["commit", "-qam", "sneaky"], check=True)
elif mode == "broken":
    train.write_text("from autolab.harness import Run\nrun.finish(\n")
elif mode == "fail":
    train.write_text(deeper)
    print("agent: out of credits")
    sys.exit(3)
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *GIT_ID, *args], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    (root / "program.md").write_text(PROGRAM)
    (root / "README").write_text("readme\n")
    (root / ".gitignore").write_text(".autolab/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def agent(tmp_path) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return path


def context(root: Path, **overrides) -> ResearchContext:
    fields = dict(
        workspace=root,
        best_source=TRAIN_PY,
        program=PROGRAM,
        history=[Outcome(1, "baseline", "keep", 2.5), Outcome(2, "wider", "discard", 2.7)],
        best_val_bpb=2.5,
        baseline_val_bpb=2.5,
        budget_seconds=60,
    )
    return ResearchContext(**(fields | overrides))


def researcher(agent: Path, mode: str, tmp_path: Path, placeholder="{prompt_file}", **kw):
    seen = tmp_path / "seen_prompt.txt"
    return CommandResearcher(f"{sys.executable} {agent} {mode} {placeholder} {seen}", **kw)


def assert_untouched(root: Path, head: str) -> None:
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "status", "--porcelain") == ""
    assert (root / "train.py").read_text() == TRAIN_PY
    assert not (root / ".autolab" / "description.txt").exists()


def test_agent_edits_and_describes_in_a_file(workspace, agent, tmp_path):
    head = git(workspace, "rev-parse", "HEAD")
    proposal = researcher(agent, "file", tmp_path).propose(context(workspace))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert proposal.source == TRAIN_PY.replace("DEPTH = 4", "DEPTH = 6")
    assert proposal.usage is None
    assert_untouched(workspace, head)
    prompt = (tmp_path / "seen_prompt.txt").read_text()
    assert PROGRAM.strip() in prompt and "wider" in prompt
    assert ".autolab/description.txt" in prompt and "Edit train.py in place" in prompt


def test_prompt_as_shell_quoted_argument(workspace, agent, tmp_path):
    proposal = researcher(agent, "argv", tmp_path, "{prompt}").propose(context(workspace))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert PROGRAM.strip() in (tmp_path / "seen_prompt.txt").read_text()


def test_agent_that_commits(workspace, agent, tmp_path):
    head = git(workspace, "rev-parse", "HEAD")
    proposal = researcher(agent, "commit", tmp_path).propose(context(workspace))
    assert proposal.description == "deeper: DEPTH 6"
    assert "DEPTH = 6" in proposal.source
    assert_untouched(workspace, head)  # the loop owns the branch


def test_agent_edits_the_best_not_the_working_tree(workspace, agent, tmp_path):
    (workspace / "train.py").write_text(TRAIN_PY.replace("DEPTH = 4", "DEPTH = 4  # stale"))
    best = TRAIN_PY + "# best\n"
    proposal = researcher(agent, "no-description", tmp_path).propose(
        context(workspace, best_source=best)
    )
    assert proposal.source == best.replace("DEPTH = 4", "DEPTH = 6")
    assert proposal.description == f"change by {Path(sys.executable).name}"
    assert "# stale" in (workspace / "train.py").read_text()  # put back as it was


@pytest.mark.parametrize("mode", ["others", "commit-others"])
def test_other_files_reject_the_proposal_and_are_restored(workspace, agent, tmp_path, mode):
    head = git(workspace, "rev-parse", "HEAD")
    with pytest.raises(SkippedProposal, match="files other than train.py: .*program.md") as info:
        researcher(agent, mode, tmp_path).propose(context(workspace))
    if mode == "others":
        assert "README, notes/new.txt, program.md" in info.value.reason
    assert_untouched(workspace, head)
    assert (workspace / "program.md").read_text() == PROGRAM
    assert (workspace / "README").is_file() and not (workspace / "notes" / "new.txt").exists()


@pytest.mark.parametrize(
    "template, reason",
    [
        ("true {prompt_file}", "the agent did not change train.py"),
        ("{agent} broken {prompt_file} {seen}", "not usable: train.py does not parse: line 2"),
        ("{agent} fail {prompt_file} {seen}", "exited with code 3: agent: out of credits"),
        ("rm train.py # {prompt_file}", "deleted train.py"),
    ],
)
def test_skips(workspace, agent, tmp_path, template, reason):
    head = git(workspace, "rev-parse", "HEAD")
    command = template.format(
        agent=f"{sys.executable} {agent}", prompt_file="{prompt_file}", seen=tmp_path / "seen"
    )
    with pytest.raises(SkippedProposal, match=reason):
        CommandResearcher(command).propose(context(workspace))
    assert_untouched(workspace, head)


def test_timeout_kills_the_whole_process_group(workspace, tmp_path):
    pid_file = tmp_path / "child.pid"
    command = f"sed -i s/DEPTH/LAYERS/ train.py; sleep 60 & echo $! > {pid_file}; wait # {{prompt}}"
    head = git(workspace, "rev-parse", "HEAD")
    started = time.monotonic()
    with pytest.raises(SkippedProposal, match="agent timed out after 1s"):
        CommandResearcher(command, timeout=1).propose(context(workspace))
    assert time.monotonic() - started < 8
    assert_untouched(workspace, head)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while process_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child)


def test_shell_agent_with_sed(workspace):
    command = (
        "test -s {prompt_file} && sed -i 's/DEPTH = 4/DEPTH = 8/' train.py && "
        "echo 'increase DEPTH to 8' > .autolab/description.txt"
    )
    proposal = CommandResearcher(command).propose(context(workspace))
    assert proposal.description == "increase DEPTH to 8"
    assert "DEPTH = 8" in proposal.source


def test_usage_errors(workspace, tmp_path):
    with pytest.raises(UsageError, match=r"no \{prompt\} or \{prompt_file\}"):
        CommandResearcher("claude -p hello")
    with pytest.raises(UsageError, match="agent command was not found"):
        CommandResearcher("no-such-agent-xyz {prompt}").propose(context(workspace))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match="not a git repository"):
        CommandResearcher("true {prompt}").propose(context(plain))


# An agent that looks for the referee and writes what it found into the one file it may change.
SNOOP = r"""
import os, pathlib, sqlite3, sys
seen = []
for path in (".autolab/ledger.db", ".git/HEAD", os.environ.get("AUTOLAB_HOME", "") + "/sealed"):
    seen.append(f"{path}: {'visible' if os.path.exists(path) else 'hidden'}")
for path in ("program.md", "README", os.path.expanduser("~/snooped")):
    try:
        pathlib.Path(path).write_text("changed by the agent")
        seen.append(f"{path}: written")
    except OSError:
        seen.append(f"{path}: read-only")
prompt = pathlib.Path(sys.argv[1]).read_text()
train = pathlib.Path("train.py")
train.write_text(train.read_text().replace("DEPTH = 4", "DEPTH = 6") + "".join(
    f"# {line}\n" for line in seen) + f"# prompt: {len(prompt)} chars\n")
pathlib.Path(".autolab/description.txt").write_text("increase DEPTH from 4 to 6\n")
"""


@pytest.mark.skipif(sandbox_unavailable() is not None, reason="no sandbox here")
def test_a_sandboxed_agent_writes_train_py_and_sees_nothing_of_the_referee(
    workspace, tmp_path, monkeypatch
):
    home = tmp_path / "autolab-home"
    (home / "sealed").mkdir(parents=True)
    monkeypatch.setenv("AUTOLAB_HOME", str(home))
    (workspace / ".autolab").mkdir()
    (workspace / ".autolab" / "ledger.db").write_text("the ledger")
    agent = tmp_path / "snoop.py"
    agent.write_text(SNOOP)
    head = git(workspace, "rev-parse", "HEAD")
    chosen = CommandResearcher(f"{sys.executable} {agent} {{prompt_file}}", isolation="sandbox")
    proposal = chosen.propose(context(workspace))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert "DEPTH = 6" in proposal.source
    for line in (
        ".autolab/ledger.db: hidden",
        ".git/HEAD: hidden",
        f"{home}/sealed: hidden",
        "program.md: read-only",
        "README: read-only",
        "snooped: read-only",
    ):
        assert line in proposal.source
    assert "# prompt: 0 chars" not in proposal.source  # it read the prompt
    assert_untouched(workspace, head)
    assert (workspace / "program.md").read_text() == PROGRAM
