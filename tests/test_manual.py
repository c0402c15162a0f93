"""A person is a researcher too (issue 14): hand edits trained with real `autolab train` runs
become ledger rows, preserved commits, diffs and verdicts, without touching the user's branch,
staging area or working tree; `checkout` refuses an edit nothing keeps; `research --from best`
starts from the person's best."""

import json
import sqlite3
import subprocess

import pytest
from tests_support import autolab

from autolab.manual.verdict import judge
from autolab.research.policy import Noise, Policy
from autolab.track.ledger import Ledger, NoiseRow
from autolab.track.standings import MANUAL_HISTORY, every_branch


def git(ws, *args) -> str:
    return subprocess.run(["git", *args], cwd=ws, capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def repo_state(ws) -> dict:
    """Everything recording must leave alone: branch, HEAD, index, working tree."""
    return {
        "branch": git(ws, "rev-parse", "--abbrev-ref", "HEAD"),
        "head": git(ws, "rev-parse", "HEAD"),
        "status": git(ws, "status", "--porcelain", "--untracked-files=all"),
        "index": git(ws, "diff", "--cached"),
        "worktree": git(ws, "diff"),
        "program": (ws / "program.md").read_text(),
    }


def train(ws, home, *flags):
    done = autolab("train", "-C", str(ws), "--samples", "0", *flags, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = [line for line in done.stdout.splitlines() if line.startswith("verdict: ")]
    assert len(verdict) == 1, done.stdout
    return " ".join(done.stdout.split("verdict: ", 1)[1].split()).split(" recorded as")[0]


def edit(ws, old: str, new: str) -> None:
    source = (ws / "train.py").read_text()
    assert old in source
    (ws / "train.py").write_text(source.replace(old, new))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


def test_hand_edits_become_experiments(tmp_path, home):
    ws = tmp_path / "ws"
    assert autolab("init", str(ws), "--recipe", "mlp", "--budget", "1s", home=home).returncode == 0
    # A messy tree: an unstaged edit, a staged one, an untracked file. None may move.
    (ws / "program.md").write_text((ws / "program.md").read_text() + "\nmy notes\n")
    (ws / "notes.txt").write_text("staged\n")
    git(ws, "add", "notes.txt")
    (ws / "scratch.txt").write_text("untracked\n")
    head = git(ws, "rev-parse", "HEAD").strip()

    edit(ws, "N_HIDDEN = 128", "N_HIDDEN = 96")
    before = repo_state(ws)
    first = train(ws, home)
    assert first.startswith("your first recorded run: ") and "noise band unknown" in first
    assert repo_state(ws) == before

    # The exact train.py, on HEAD's tree (not the dirty program.md), parent HEAD.
    assert git(ws, "show", "refs/autolab/tried/1:train.py") == (ws / "train.py").read_text()
    assert git(ws, "rev-parse", "refs/autolab/tried/1^").strip() == head
    assert git(ws, "show", "refs/autolab/tried/1:program.md") == git(ws, "show", "HEAD:program.md")
    assert git(ws, "diff", "--name-only", head, "refs/autolab/tried/1").split() == ["train.py"]

    edit(ws, "N_HIDDEN = 96", "N_HIDDEN = 32")
    second = train(ws, home, "-m", "smaller hidden layer")
    with Ledger.for_workspace(ws) as ledger:
        views = ledger.experiments()
        rows = [(v.kind, v.researcher, v.session_id) for v in views]
        assert rows == [("manual", "manual", None)] * 2
        assert views[1].description == "smaller hidden layer"
        assert views[0].description == "reduce N_HIDDEN from 128 to 96"
        assert len(ledger.metrics(2)) > 0 and ledger.verify() == []
        # The verdict is the loop's Policy against the best before it, band unknown (min_delta).
        s1, s2 = views[0].score, views[1].score
        expected, _ = Policy().decide(s2, s1, None)
        assert views[1].status == ("keep" if expected == "keep" else "discard")
    assert second.startswith(f"vs your best (#1, {s1:.4f}): ")
    assert "the noise band is unknown: `autolab train --repeat 3` measures it" in second or (
        expected == "discard"
    )
    assert (runs := ws / ".autolab" / "runs" / "2").is_dir() and (runs / "model.pt2").is_file()

    # --repeat 2: two runs of one train.py, the mean is the score, the spread the band.
    repeated = train(ws, home, "--repeat", "2")
    assert "mean of 2 runs" in repeated and "noise band now" in repeated
    with Ledger.for_workspace(ws) as ledger:
        third, fourth = ledger.experiment(3), ledger.experiment(4)
        assert (third.kind, fourth.kind, fourth.rechecks) == ("manual", "recheck", 3)
        scores = third.flags["repeat_scores"]
        assert scores == [third.val_bpb, fourth.val_bpb]
        assert third.score == pytest.approx(sum(scores) / 2)
        band = Policy().band(Noise.measure(scores))
        assert third.commit_sha == fourth.commit_sha
    # The next single run is judged with that band.
    edit(ws, "N_HIDDEN = 32", "N_HIDDEN = 128")
    fourth_verdict = train(ws, home)
    assert f"{band:.4f}" in fourth_verdict or "no better" in fourth_verdict
    assert "unknown" not in fourth_verdict

    # --no-record: trains, records nothing.
    done = autolab("train", "-C", str(ws), "--samples", "0", "--no-record", home=home)
    assert done.returncode == 0 and "verdict" not in done.stdout
    with Ledger.for_workspace(ws) as ledger:
        assert ledger.next_number() == 6
    assert repo_state(ws)["head"] == before["head"]

    # diff: exactly git diff of the preserved commits.
    done = autolab("diff", "1", "2", "-C", str(ws), home=home)
    assert done.returncode == 0 and done.stdout
    assert done.stdout == git(ws, "diff", "refs/autolab/tried/1", "refs/autolab/tried/2", "--",
                              "train.py")  # fmt: skip
    assert "-N_HIDDEN = 96" in done.stdout and "+N_HIDDEN = 32" in done.stdout
    with Ledger.for_workspace(ws) as ledger:
        branches = every_branch(ledger)
        best = branches[MANUAL_HISTORY].best_number
        best_sha = ledger.experiment(best).commit_sha
    done = autolab("diff", "best", "last", "-C", str(ws), home=home)
    assert done.stdout == git(ws, "diff", best_sha, "refs/autolab/tried/5", "--", "train.py")

    # checkout: an edit nothing keeps is refused in one line; --force overwrites it.
    edit(ws, "N_HIDDEN = 128", "N_HIDDEN = 100")
    dirty = (ws / "train.py").read_text()
    done = autolab("checkout", "1", "-C", str(ws), home=home)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--force" in done.stderr and (ws / "train.py").read_text() == dirty
    done = autolab("checkout", "1", "--force", "-C", str(ws), home=home)
    assert done.returncode == 0, done.stderr
    assert (ws / "train.py").read_text() == git(ws, "show", "refs/autolab/tried/1:train.py")
    # Now train.py is exp 1's, which the ledger keeps: no --force needed to move on.
    done = autolab("checkout", "best", "-C", str(ws), home=home)
    assert done.returncode == 0, done.stderr
    assert (ws / "train.py").read_text() == git(ws, "show", f"{best_sha}:train.py")
    after = repo_state(ws)
    assert (after["head"], after["branch"], after["index"]) == (
        before["head"], before["branch"], before["index"])  # fmt: skip

    # One history: results and status show the manual runs, filterable by researcher.
    rows = json.loads(autolab("results", "--json", "--researcher", "manual", "-C", str(ws),
                              home=home).stdout)  # fmt: skip
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["number"] for r in rows if r["is_best"]] == [best]
    table = autolab("results", "-C", str(ws), home=home).stdout
    assert f"manual runs: best exp {best}" in " ".join(table.split())
    status = json.loads(autolab("status", "--json", "-C", str(ws), home=home).stdout)
    assert status["manual"]["best_number"] == best
    assert status["manual"]["noise"]["number"] == 3
    done = autolab("results", "--researcher", "nobody", "-C", str(ws), home=home)
    assert done.returncode == 2 and "researchers: manual" in done.stderr

    # research --from best: the session's branch starts at the person's best commit, and its
    # numbers count only its own runs.
    git(ws, "checkout", "--", "program.md")
    git(ws, "reset", "-q")
    (ws / "notes.txt").unlink()
    (ws / "scratch.txt").unlink()
    git(ws, "checkout", "--", "train.py")
    done = autolab("research", "--no-prune",
                   "-C", str(ws), "--from", "best", "--tag", "t", "--baseline-runs",
                   "1", "--max-experiments", "1", "--plain", home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(ws, "rev-parse", "--abbrev-ref", "HEAD").strip() == "autolab/t"
    git(ws, "merge-base", "--is-ancestor", best_sha, "HEAD")  # the branch grew from it
    with Ledger.for_workspace(ws) as ledger:
        st = ledger.standings("t")
        assert st.counts.baseline_runs == 1 and min(r.number for r in st.rows) == 6
        assert ledger.experiment(6).kind == "baseline"
        assert ledger.experiment(6).commit_sha == best_sha
        assert ledger.sessions()[0].config["base_commit"] == best_sha
        assert every_branch(ledger)[MANUAL_HISTORY].best_number == best
    done = autolab("report", "-C", str(ws), "--samples", "0", "--out", str(tmp_path / "r"),
                   home=home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Your runs (autolab train)" in report and f"| {best} | manual | keep ★ |" in report


def test_checkout_refuses_outside_git_and_unknown_names(tmp_path, home):
    ws = tmp_path / "ws"
    assert autolab("init", str(ws), "--recipe", "mlp", "--budget", "1s", home=home).returncode == 0
    done = autolab("diff", "1", "2", "-C", str(ws), home=home)
    assert done.returncode == 2 and "autolab research" in done.stderr  # no ledger yet
    with Ledger.for_workspace(ws):
        pass
    done = autolab("checkout", "nope", "-C", str(ws), home=home)
    assert done.returncode == 2 and "best, baseline or last" in done.stderr
    done = autolab("checkout", "7", "-C", str(ws), home=home)
    assert done.returncode == 2 and "no experiment 7" in done.stderr
    done = autolab("train", "-C", str(ws), "--repeat", "0", home=home)
    assert done.returncode == 2 and "--repeat" in done.stderr


def test_verdict_follows_the_loops_policy():
    band = NoiseRow(2.0, 0.005, 3, 0.0)  # band = max(0.002, 2 x 0.005) = 0.0100
    first = judge([2.9], None, None)
    assert first.status == "keep" and "noise band unknown" in first.line
    win = judge([2.8468], (12, 2.8610), band)
    assert win == judge([2.8468], (12, 2.8610), band)
    assert win.status == "keep"
    assert win.line == (
        "vs your best (#12, 2.8610): −0.0142, beyond the noise band 0.0100 → new best"
    )
    inside = judge([2.8560], (12, 2.8610), band)
    assert inside.status == "discard"
    assert inside.line.endswith(
        "inside the noise band 0.0100: `autolab train --repeat 2` to be sure"
    )
    worse = judge([2.87], (12, 2.8610), band)
    assert worse.status == "discard" and "no better" in worse.line
    unknown = judge([2.8560], (12, 2.8610), None)  # 0.005 > min_delta: kept, band unknown
    assert unknown.status == "keep" and "the noise band is unknown" in unknown.line
    repeated = judge([2.85, 2.86], (12, 2.8610), None)
    assert repeated.status == "keep" and "mean of 2 runs 2.8550" in repeated.line
    assert judge([2.86, 2.87], (12, 2.8610), None).status == "discard"


def test_manual_runs_leave_research_numbers_alone(tmp_path):
    """A manual row in no session: the branch's standings do not see it; every_branch does."""
    from autolab.track.ledger import ExperimentRecord, ResultRecord

    with Ledger(tmp_path / "ledger.db") as ledger:
        s = ledger.start_session("t", "autolab/t", "search", 1.0, "cpu", {"pid": 1})
        ledger.add_experiment(ExperimentRecord(1, s, "baseline", "a" * 40, "baseline"))
        ledger.add_result(1, ResultRecord("keep", "", 2.0))
        ledger.record_noise(s, 2.0, 0.0, 1)
        manual = ExperimentRecord(2, None, "manual", "b" * 40, "x", researcher="manual")
        ledger.add_experiment(manual)
        ledger.add_result(2, ResultRecord("keep", "", 1.5))
        st = ledger.standings()
        assert [r.number for r in st.rows] == [1] and st.best_number is None
        branches = every_branch(ledger)
        assert branches[MANUAL_HISTORY].best_number == 2 and None not in branches
    count = sqlite3.connect(tmp_path / "ledger.db").execute("SELECT COUNT(*) FROM experiments")
    assert count.fetchone()[0] == 2


def test_checkout_gives_back_a_crlf_train_py_byte_for_byte(tmp_path, home):
    """A train.py saved with Windows line endings: the preserved commit and `checkout` keep
    every CR (a text pipe would have turned them into LF)."""
    ws = tmp_path / "ws"
    assert autolab("init", str(ws), "--recipe", "mlp", "--budget", "1s", home=home).returncode == 0
    crlf = (ws / "train.py").read_bytes().replace(b"\n", b"\r\n")
    assert crlf.count(b"\r\n") > 10
    (ws / "train.py").write_bytes(crlf)
    train(ws, home, "-m", "crlf")
    preserved = subprocess.run(["git", "cat-file", "blob", "refs/autolab/tried/1:train.py"],
                               cwd=ws, capture_output=True, check=True).stdout  # fmt: skip
    assert preserved == crlf
    done = autolab("checkout", "1", "-C", str(ws), home=home)
    assert done.returncode == 0 and "already" in done.stdout, done.stdout + done.stderr
    git(ws, "checkout", "--", "train.py")  # HEAD's LF train.py, which HEAD keeps
    assert (ws / "train.py").read_bytes() != crlf
    done = autolab("checkout", "1", "-C", str(ws), home=home)
    assert done.returncode == 0, done.stderr
    assert (ws / "train.py").read_bytes() == crlf
