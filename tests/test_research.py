"""The research loop end to end: real workspaces, real subprocesses, real git, real SQLite.

Sessions run the mlp recipe for 1.5 s per experiment on the names data, so each experiment
takes a few seconds. Kills are real SIGKILLs of the whole `autolab research` process group.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from chat_server import ChatServer
from tests_support import autolab

from autolab.research.policy import Noise, Policy
from autolab.sandbox import sandbox_unavailable
from autolab.track.ledger import Ledger
from autolab.track.results_tsv import parse_results_tsv

BUDGET = "1.5s"


def env_for(home):
    return {**os.environ, "AUTOLAB_HOME": str(home)}


def start_research(workspace, home, *args):
    # --no-prune: these tests stop or kill a candidate they saw running; a pruned one ends at a
    # quarter of its budget and the next starts before the test can act (tests/test_pruning.py
    # runs sessions that prune).
    command = ["research", "--no-prune", "-C", str(workspace), "--plain", "--no-prune", *args]
    return subprocess.Popen(
        [sys.executable, "-m", "autolab", *command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_for(home),
        start_new_session=True,
    )  # fmt: skip


def git(workspace, *args) -> str:
    done = subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def workspace(tmp_path, home):
    path = tmp_path / "ws"
    done = autolab("init", str(path), "--recipe", "mlp", "--budget", BUDGET, home=home)
    assert done.returncode == 0, done.stderr
    return path


def wait_for(condition, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ledger_of(workspace) -> Ledger:
    return Ledger.for_workspace(workspace)


def assert_ledger_and_branch_agree(workspace, tag):
    """Every finished experiment is in results.tsv, every candidate's commit is preserved, and
    the branch points at the last kept candidate (or the base commit)."""
    with ledger_of(workspace) as ledger:
        views = ledger.experiments()
        sessions = [s for s in ledger.sessions() if s.tag == tag]
    assert views and all(v.status != "running" for v in views)
    rows = parse_results_tsv((workspace / "results.tsv").read_text())
    assert [r["status"] for r in rows] == [v.status for v in views]
    for view in views:
        if view.kind == "candidate":
            assert (
                git(workspace, "rev-parse", f"refs/autolab/tried/{view.number}") == view.commit_sha
            )
            assert git(workspace, "log", "-1", "--format=%s", view.commit_sha) == view.description
    kept = [v for v in views if v.kind == "candidate" and v.status == "keep"]
    expected = kept[-1].commit_sha if kept else sessions[0].config["base_commit"]
    assert git(workspace, "rev-parse", f"autolab/{tag}") == expected
    assert git(workspace, "status", "--porcelain") == ""
    return views


# -- the keep/discard policy ----------------------------------------------------------------------


def test_noise_band_and_decisions():
    noise = Noise.measure([3.00, 3.02])
    policy = Policy(k=2.0, min_delta=0.002)
    assert noise.baseline_bpb == pytest.approx(3.01)
    assert policy.band(noise) == pytest.approx(2 * noise.spread)
    assert policy.decide(2.90, 3.01, noise)[0] == "keep"
    assert policy.decide(3.00, 3.01, noise)[0] == "recheck"  # a win inside the noise
    assert policy.decide(3.05, 3.01, noise)[0] == "discard"
    assert policy.decide_recheck([3.00, 3.005], 3.01)[0] == "keep"
    assert policy.decide_recheck([3.00, 3.03], 3.01)[0] == "discard"
    greedy = Policy(greedy=True)
    assert greedy.decide(3.0099, 3.01, noise)[0] == "keep"
    assert Policy(min_delta=0.5).band(noise) == 0.5


# -- a whole session ------------------------------------------------------------------------------


def test_search_session_records_everything_and_keeps_the_branch_consistent(workspace, home):
    done = autolab(
        "research", "--no-prune",
        "-C", str(workspace), "--plain", "--tag", "t1", "--max-experiments", "3",
        "--confirm", "0",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "session succeeded" in done.stdout
    views = assert_ledger_and_branch_agree(workspace, "t1")
    baselines = [v for v in views if v.kind == "baseline"]
    candidates = [v for v in views if v.kind == "candidate"]
    assert len(baselines) == 3 and len(candidates) == 3  # no history to pool with: 3 runs
    assert sorted(v.seed for v in baselines) == [0, 1, 2]
    assert all(v.val_bpb and 2.0 < v.val_bpb < 5.0 for v in baselines)
    assert all(v.researcher == "search" and v.params for v in candidates)
    assert len({v.commit_sha for v in candidates}) == 3  # never the same change twice
    with ledger_of(workspace) as ledger:
        session = ledger.latest_session()
        assert session.status == "succeeded" and session.noise.runs == 3
        assert ledger.metrics(candidates[0].number)  # live metrics were recorded
        kinds = {e.kind for e in ledger.events()}
    assert {"created", "started", "step", "evaluation", "finished", "verdict"} <= kinds

    done = autolab("results", "-C", str(workspace), "--json", home=home)
    assert [r["number"] for r in json.loads(done.stdout)] == [v.number for v in views]


def kill_group(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_resume_after_kill_9_while_the_baseline_and_a_candidate_run(workspace, home):
    process = start_research(workspace, home, "--tag", "k", "--max-experiments", "2")
    with ledger_of(workspace) as ledger:
        # Kill point 1: the second baseline run is training.
        wait_for(lambda: [v for v in ledger.unfinished() if v.number == 2], what="baseline 2")
        time.sleep(0.5)
        kill_group(process)
        done = autolab("research", "--no-prune",
                       "-C", str(workspace), "--plain", "--resume", "--tag", "k",
                       "--max-experiments", "1", "--confirm", "0", home=home,
                       timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        views = ledger.experiments()
        assert views[1].status == "interrupted"
        # 3 scored (no history to pool with), one more for the interrupted one
        assert [v.kind for v in views].count("baseline") == 4
        assert ledger.sessions()[0].noise.runs == 3

        # Kill point 2: a candidate is training.
        process = start_research(
            workspace, home, "--resume", "--tag", "k", "--max-experiments", "3"
        )
        running = wait_for(
            lambda: [v for v in ledger.unfinished() if v.kind == "candidate"], what="a candidate"
        )[0]
        time.sleep(0.5)
        kill_group(process)
        assert git(workspace, "rev-parse", "HEAD") == running.commit_sha  # branch still on it
        done = autolab("research", "--no-prune",
                       "-C", str(workspace), "--plain", "--resume", "--tag", "k",
                       "--max-experiments", "3", "--confirm", "0", home=home,
                       timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert ledger.experiment(running.number).status == "interrupted"
        again = [
            v for v in ledger.experiments()
            if v.number > running.number and v.description == running.description
        ]  # fmt: skip
        assert again and again[0].status != "interrupted"  # the interrupted change ran again
    assert_ledger_and_branch_agree(workspace, "k")


def test_resume_keeps_half_written_work_aside(workspace, home):
    assert (
        autolab(
            "research",
            "-C",
            str(workspace),
            "--plain",
            "--tag",
            "h",
            "--max-experiments",
            "0",
            "--baseline-runs",
            "1",
            home=home,
        ).returncode
        == 0
    )
    # As if autolab died between committing a proposal and recording it, with edits on top.
    train_py = workspace / "train.py"
    train_py.write_text(train_py.read_text().replace("N_HIDDEN = 128", "N_HIDDEN = 300"))
    git(workspace, "commit", "-qam", "a stray commit")
    stray = git(workspace, "rev-parse", "HEAD")
    train_py.write_text(train_py.read_text() + "\n# half-written\n")
    done = autolab("research", "--no-prune",
                   "-C", str(workspace), "--plain", "--resume", "--tag", "h",
                   "--max-experiments", "0", home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    recovered = git(workspace, "for-each-ref", "--format=%(objectname)", "refs/autolab/recovered")
    assert recovered == stray
    kept = list((workspace / ".autolab" / "recovered").rglob("train.py"))
    assert kept and "# half-written" in kept[0].read_text()
    assert git(workspace, "status", "--porcelain") == ""


def test_stop_lets_the_running_experiment_finish_and_be_recorded(workspace, home):
    process = start_research(workspace, home, "--tag", "s", "--baseline-runs", "1")
    with ledger_of(workspace) as ledger:
        running = wait_for(
            lambda: [v for v in ledger.unfinished() if v.kind == "candidate"], what="candidate"
        )[0]
        done = autolab("stop", "-C", str(workspace), home=home)
        assert done.returncode == 0, done.stderr
        assert "once the running experiment is recorded" in done.stdout
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert ledger.latest_session().status == "cancelled"
        stopped = ledger.experiment(running.number)
        assert stopped.status not in ("interrupted", "running"), stopped
        # Nothing new was started after it, but its own re-check, if it needed one.
        later = [v for v in ledger.experiments() if v.number > running.number]
        assert all(v.rechecks == running.number for v in later), later
    assert_ledger_and_branch_agree(workspace, "s")
    assert not (workspace / ".autolab" / "stop").exists()
    done = autolab("stop", "-C", str(workspace), home=home)
    assert done.returncode == 2
    assert "no research session is running" in done.stderr and "\n" not in done.stderr.strip()


def test_stop_now_interrupts_and_resume_runs_it_again_first(workspace, home):
    process = start_research(workspace, home, "--tag", "n", "--baseline-runs", "1")
    with ledger_of(workspace) as ledger:
        running = wait_for(
            lambda: [v for v in ledger.unfinished() if v.kind == "candidate"], what="candidate"
        )[0]
        assert autolab("stop", "--now", "-C", str(workspace), home=home).returncode == 0
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert ledger.latest_session().status == "cancelled"
        assert ledger.experiment(running.number).status == "interrupted"
        done = autolab("research", "--no-prune",
                       "-C", str(workspace), "--plain", "--resume", "--tag", "n",
                       "--max-experiments", "2", "--confirm", "0", home=home)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        rerun = ledger.experiments()[running.number]  # the first experiment after it
        assert (rerun.kind, rerun.description) == ("candidate", running.description)
        assert rerun.status != "interrupted"
    assert_ledger_and_branch_agree(workspace, "n")


def test_ctrl_c_ends_the_session_cleanly(workspace, home):
    process = start_research(workspace, home, "--tag", "c", "--baseline-runs", "1")
    with ledger_of(workspace) as ledger:
        wait_for(
            lambda: [v for v in ledger.unfinished() if v.kind == "candidate"], what="candidate"
        )
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the group
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert ledger.latest_session().status == "cancelled"
        assert ledger.experiments()[-1].status == "interrupted"
    assert_ledger_and_branch_agree(workspace, "c")


def test_ctrl_c_during_the_baseline_cancels_and_records_it(workspace, home):
    """An interrupted baseline run is recorded as interrupted and the session is cancelled, not
    failed: nothing was wrong with train.py."""
    process = start_research(workspace, home, "--tag", "b", "--budget", "30s")
    with ledger_of(workspace) as ledger:
        wait_for(lambda: ledger.metrics(1), what="the first baseline run's steps")  # mid-run
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert ledger.latest_session().status == "cancelled"
        assert [(v.kind, v.status) for v in ledger.experiments()] == [("baseline", "interrupted")]
    assert "Traceback" not in output


# -- the llm researcher through the loop ----------------------------------------------------------

EDIT = """DESCRIPTION: widen the hidden layer to 192
<<<<<<< SEARCH
N_HIDDEN = 128  # tanh hidden units
=======
N_HIDDEN = 192  # tanh hidden units
>>>>>>> REPLACE
"""

CHEAT = """DESCRIPTION: rewrite the brief while training
<<<<<<< SEARCH
from autolab.harness import Run
=======
from autolab.harness import Run
import pathlib
pathlib.Path(__file__).with_name("program.md").write_text("anything goes")
>>>>>>> REPLACE
"""


def test_llm_researcher_session_with_a_cheat(workspace, home):
    with ChatServer([EDIT, CHEAT], prompt_tokens=1000, completion_tokens=50) as server:
        done = autolab(
            "research", "--no-prune",
            "-C", str(workspace), "--plain", "--tag", "llm", "--agent", "llm",
            "--llm-base-url", server.url, "--llm-model", "test-model", "--baseline-runs", "1",
            "--max-experiments", "2", "--confirm", "0", home=home,
        )  # fmt: skip
        prompts = [r["messages"][-1]["content"] for r in server.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "program.md" in prompts[0] or "Research program" in prompts[0]
    views = assert_ledger_and_branch_agree(workspace, "llm")
    widen, cheat = [v for v in views if v.kind == "candidate"]
    assert widen.description == "widen the hidden layer to 192"
    assert widen.researcher == "llm" and widen.llm_prompt_tokens == 1000
    assert widen.status in ("keep", "discard")
    if sandbox_unavailable() is None:  # in the sandbox the workspace is not even there
        assert cheat.status == "crash" and "Read-only file system" in cheat.reason
    else:  # with process isolation the change is caught and quarantined
        assert cheat.status == "invalid" and "program.md" in cheat.reason
    assert "anything goes" not in (workspace / "program.md").read_text()


def test_unreachable_llm_endpoint_is_a_usage_error(workspace, home):
    done = autolab(
        "research", "--no-prune", "-C", str(workspace), "--plain", "--agent", "llm",
        "--llm-base-url", "http://127.0.0.1:9/v1", "--llm-model", "m", "--baseline-runs", "1",
        home=home, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot reach the LLM endpoint" in done.stderr


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input_gets_one_line_and_exit_2(workspace, home, tmp_path):
    (workspace / "notes.txt").write_text("mine")
    done = autolab("research", "--no-prune", "-C", str(workspace), home=home)
    assert done.returncode == 2 and "uncommitted changes" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    (workspace / "notes.txt").unlink()

    done = autolab("research", "--no-prune", "-C", str(tmp_path / "nowhere"), home=home)
    assert done.returncode == 2 and "not an autolab workspace" in done.stderr

    train_py = workspace / "train.py"
    train_py.write_text("print('no harness here')\n")
    git(workspace, "commit", "-qam", "break it")
    done = autolab("research", "--no-prune", "-C", str(workspace), home=home)
    assert done.returncode == 2 and "harness" in done.stderr

    done = autolab(
        "research", "--no-prune", "-C", str(workspace), "--resume", "--tag", "never", home=home
    )
    assert done.returncode == 2 and "no session" in done.stderr


def test_plain_output_has_progress_lines_in_the_events_format(workspace, home):
    done = autolab("research", "--no-prune",
                   "-C", str(workspace), "--tag", "p", "--baseline-runs", "1",
                   "--max-experiments", "1", "--progress-interval", "0", home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = re.findall(r"^\d\d:\d\d:\d\d  exp 1  step \d+ \(\d+%\)  loss \d", done.stdout, re.M)
    assert steps, done.stdout
    assert "exp 1: baseline (seed 0)" in done.stdout
    done = autolab(
        "research", "--no-prune", "-C", str(workspace), "--progress-interval", "-1", home=home
    )
    assert done.returncode == 2 and "--progress-interval" in done.stderr
