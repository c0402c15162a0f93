"""A claim that replicates (issue 10 §6): after the search, the reference and the best recipe are
re-run side by side, and every view reports the same confirmed gain with its 95% interval.

Real sessions of the mlp recipe for 1.5 s per run. The workspace starts from a recipe with its
learning rate cut 100-fold and a shell agent puts it back, so the one candidate is a keep.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
from tests_support import autolab

from autolab.report.build import collect, render_markdown
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.workspace import load_workspace

BUDGET = "1.5s"
# The agent may write train.py and nothing beside it (no temporary file, as `sed -i` makes).
AGENT = (
    f'test -s {{prompt_file}} && {sys.executable} -c "import pathlib; p = pathlib.Path('
    "'train.py'); p.write_text(p.read_text().replace('RATE = 0.00005', 'RATE = 0.005'))\""
    " && echo 'restore the learning rate' > .autolab/description.txt"
)

BREAK = (  # a train.py that exits 3 before anything: a crash
    f'test -s {{prompt_file}} && {sys.executable} -c "import pathlib; p = pathlib.Path('
    "'train.py'); p.write_text('raise SystemExit(3)\\n' + p.read_text())\""
    " && echo 'exit 3 first' > .autolab/description.txt"
)


def git(workspace, *args) -> str:
    done = subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


def handicapped_workspace(path, home):
    done = autolab("init", str(path), "--recipe", "mlp", "--budget", BUDGET, home=home)
    assert done.returncode == 0, done.stderr
    train = path / "train.py"
    train.write_text(train.read_text().replace("LEARNING_RATE = 0.005", "LEARNING_RATE = 0.00005"))
    git(path, "commit", "-qam", "a learning rate 100 times too small")
    return path


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its 95% interval, from the textbook formulas (Welch-Satterthwaite
    degrees of freedom, the t quantile), not the code under test's scipy call."""
    from scipy.stats import t

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = statistics.fmean(a) - statistics.fmean(b)
    half = t.ppf(0.975, df) * (va + vb) ** 0.5
    return diff, diff - half, diff + half


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory, home):
    tmp = tmp_path_factory.mktemp("confirm")
    workspace = handicapped_workspace(tmp / "ws", home)
    notices = tmp / "notices.jsonl"
    done = autolab(
        "research", "--no-prune",
        "-C", str(workspace), "--plain", "--tag", "c", "--agent", "command",
        "--agent-command", AGENT, "--max-experiments", "1", "--confirm", "2",
        "--baseline-runs", "2", "--notify-cmd", f"cat >> {notices}", home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return workspace, notices, done.stdout


def test_confirm_reruns_both_recipes_interleaved_and_every_view_agrees(confirmed, home):
    workspace, notices, stdout = confirmed
    with Ledger.for_workspace(workspace) as ledger:
        assert ledger.verify() == []
        st = ledger.standings("c")
        views = ledger.experiments()
        sessions = ledger.sessions()
    baselines = [v for v in views if v.kind == "baseline"]
    (candidate,) = [v for v in views if v.kind == "candidate"]
    runs = [v for v in views if v.kind == "confirm"]
    assert candidate.status == "keep" and st.best_number == candidate.number

    # 2K confirm runs, reference and best interleaved, each with a seed no other run had, in a
    # session of their own that continues the research session.
    assert len(runs) == 4 and all(v.status == "keep" for v in runs)
    base = baselines[0].commit_sha
    assert [v.commit_sha for v in runs] == [base, candidate.commit_sha] * 2
    seeds = [v.seed for v in runs]
    assert len(set(seeds)) == 4 and not set(seeds) & {v.seed for v in views if v not in runs}
    assert [(s.researcher, s.status) for s in sessions] == [("command", "succeeded"),
                                                           ("confirm", "succeeded")]  # fmt: skip
    assert sessions[1].config["continues"] == sessions[0].id
    assert {v.session_id for v in runs} == {sessions[1].id}
    # Never a keep, never the best: the counts and the best are the search's.
    assert (st.counts.kept, st.counts.confirm_runs, st.counts.baseline_runs) == (1, 4, 2)
    assert st.best_score == candidate.score and git(workspace, "rev-parse", "autolab/c") == (
        candidate.commit_sha
    )

    # The gain and its interval, computed here from the rows.
    reference = [v.val_bpb for v in runs if v.commit_sha == base]
    best = [v.val_bpb for v in runs if v.commit_sha == candidate.commit_sha]
    delta, low, high = welch(best, reference)
    c = st.confirmed
    assert (c.reference_scores, c.best_scores) == (reference, best)
    assert (c.delta, c.low, c.high) == pytest.approx((delta, low, high))
    assert c.excludes_zero == (high < 0 or low > 0)
    assert c.session_delta == pytest.approx(st.delta)
    assert delta < 0  # 100 times the learning rate: the gain is real
    expected = {"best_number": candidate.number, "delta": pytest.approx(delta),
                "low": pytest.approx(low), "high": pytest.approx(high),
                "excludes_zero": c.excludes_zero}  # fmt: skip

    def same(found: dict) -> None:
        assert {k: found[k] for k in expected} == expected

    # `autolab status --json`, `autolab results --json`, the notify payload, the dashboard's API
    status = json.loads(autolab("status", "-C", str(workspace), "--json", home=home).stdout)
    same(status["confirmed"])
    assert status["counts"]["confirm_runs"] == 4
    rows = json.loads(autolab("results", "-C", str(workspace), "--json", home=home).stdout)
    (best_row,) = [r for r in rows if r["is_best"]]
    same(best_row["confirmed"])
    assert [r["confirms"] for r in rows if r["kind"] == "confirm"] == ["reference", "best"] * 2
    sent = [json.loads(line) for line in notices.read_text().splitlines()]
    assert [n["event"] for n in sent] == ["new_best", "session_ended", "session_ended"]
    assert sent[1]["confirmed"] is None  # the search's end: not confirmed yet
    same(sent[2]["confirmed"])
    pytest.importorskip("starlette")
    from autolab.dashboard.api import Dashboard

    dash = Dashboard(load_workspace(workspace))
    same(dash.overview()["confirmed"])
    assert [r["confirms"] for r in dash.experiments() if r["kind"] == "confirm"] == [
        "reference", "best"] * 2  # fmt: skip
    dash.close()

    # The research command's last line and the report, which leads with it.
    text = f"confirmed Δ {delta:+.4f} (95% CI {low:+.4f} to {high:+.4f}"
    assert text in " ".join(stdout.split())
    with Ledger.for_workspace(workspace) as ledger:
        data = collect(workspace, ledger, 0)
    markdown = render_markdown(data)
    assert markdown.splitlines()[2].startswith(f"**Confirmed gain: {text}")
    for n in (r["number"] for r in rows if r["kind"] == "confirm"):
        assert f"| {n} | {sessions[1].id} | confirm: " in markdown  # every run, with its Δ


def test_stopping_a_confirmation_leaves_the_ledger_consistent(confirmed, home):
    workspace = confirmed[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "autolab", "confirm", "-C", str(workspace), "--k", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "AUTOLAB_HOME": str(home)},
    )  # fmt: skip
    with Ledger.for_workspace(workspace) as ledger:
        before = len(ledger.experiments())
        earlier = ledger.standings("c").confirmed
        deadline = time.time() + 120
        while not [v for v in ledger.unfinished() if v.number > before]:
            assert time.time() < deadline and process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        assert ledger.verify() == [] and ledger.unfinished() == []
        session = ledger.latest_session()
        assert (session.researcher, session.status) == ("confirm", "cancelled")
        stopped = ledger.experiments(session.id)
        assert [(v.kind, v.status) for v in stopped] == [("confirm", "interrupted")]
        assert stopped[0].commit_sha == ledger.experiment(1).commit_sha  # the reference first
        st = ledger.standings("c")
    # A session that never re-ran the best adds nothing: the confirmation is the first one's.
    assert st.confirmed.session_ids == [session.id - 1] and st.confirmed.runs == 4
    assert st.counts.confirm_runs == 5 and st.best_number == earlier.best_number


def test_nothing_kept_or_a_running_session_is_one_line(tmp_path, home):
    workspace = handicapped_workspace(tmp_path / "ws", home)
    done = autolab("research", "--no-prune",
                   "-C", str(workspace), "--plain", "--tag", "n", "--agent",
                   "command", "--agent-command", BREAK, "--max-experiments", "1",
                   "--baseline-runs", "1", home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing kept: nothing to confirm" in done.stdout
    done = autolab("confirm", "-C", str(workspace), home=home)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "nothing was kept on autolab/n" in done.stderr and "nothing to confirm" in done.stderr
    with Ledger.for_workspace(workspace) as ledger:
        assert [(v.kind, v.status) for v in ledger.experiments()] == [
            ("baseline", "keep"), ("candidate", "crash")]  # nothing more ran  # fmt: skip
        # A session still running (this process is alive): a confirmation must wait.
        s = ledger.start_session("live", "autolab/live", "search", 1.5, "cpu",
                                 {"pid": os.getpid()})  # fmt: skip
        ledger.add_experiment(ExperimentRecord(3, s, "baseline", "a" * 40, "baseline (seed 0)"))
        ledger.add_result(3, ResultRecord("keep", "baseline run", 3.0))
    done = autolab("confirm", "-C", str(workspace), home=home)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "session 2 on autolab/live is running" in done.stderr
    done = autolab("confirm", "-C", str(workspace), "--k", "1", home=home)
    assert done.returncode == 2 and "--k must be at least 2" in done.stderr
    done = autolab("research", "--no-prune", "-C", str(workspace), "--confirm", "1", home=home)
    assert done.returncode == 2 and "--confirm must be 0 (skip) or at least 2" in done.stderr
