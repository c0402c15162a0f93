"""One golden ledger, every view asked for its best, reference, each Δ and the counts: they
must all tell the same numbers (issue 10). Also the ledger's integrity seen from the CLI.

The ledger is written as the loop writes it (verdict events from the loop's own
`verdict_event`): two baseline seeds, a discard, a win inside the noise band re-checked and
kept, a crash, an invalid with a cheated score, then a second session continuing the branch
with --resume (a keep beyond the band, a discard). And the same questions of a ledger a real
short session wrote (`test_a_real_session_tells_the_same_numbers_everywhere`): two sessions of
the search researcher on the mlp recipe, 1 s a run, the second a `--resume`, with the real
`--notify-cmd` payloads and the research command's own last line.
"""

import json
import os
import sqlite3
import subprocess
import sys
from types import SimpleNamespace

import pytest

from autolab import gitrepo
from autolab.inspect.select import select_run
from autolab.notify import payload
from autolab.report.build import collect, experiment_rows, render_markdown
from autolab.research.context import research_context
from autolab.research.prompt import build_prompt
from autolab.research.recorder import verdict_event
from autolab.research.view import standings_text
from autolab.track.ledger import ExperimentRecord, Ledger, LedgerError, ResultRecord
from autolab.workspace import init_workspace, load_workspace

pytest.importorskip("starlette")
from autolab.dashboard.api import Dashboard  # noqa: E402

REFERENCE = 2.005  # mean of 2.000 and 2.010
BEST, BEST_NUMBER = 1.950, 8
DELTAS = {1: -0.005, 2: 0.005, 3: 0.015, 4: -0.008, 5: -0.006, 6: None, 7: None, 8: -0.055,
          9: -0.015}  # fmt: skip
COUNTS = {"kept": 2, "discarded": 2, "crashed": 1, "timed_out": 0, "invalid": 1,
          "interrupted": 0, "pruned": 0, "running": 0, "rechecks": 1, "baseline_runs": 2,
          "confirm_runs": 0, "failed": 2}  # fmt: skip


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def record(ledger, tag, session, number, kind, status, val_bpb=None, score=None, reason="",
           rechecks=None, **result):  # fmt: skip
    ledger.add_experiment(ExperimentRecord(number, session, kind, f"{number:040x}",
                                           f"{kind} {number}", rechecks=rechecks,
                                           seed=number))  # fmt: skip
    ledger.add_result(number, ResultRecord(status, reason, val_bpb, score=score, **result))
    message, _, data = verdict_event(ledger.standings(tag), number, status, reason)
    ledger.add_event("verdict", message, session, number, data)


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    root = init_workspace(tmp_path_factory.mktemp("golden") / "ws", recipe="mlp")
    base = gitrepo.head(root)
    config = {"base_commit": base, "k": 2.0, "min_delta": 0.002, "greedy": False,
              "baseline_runs": 2, "pid": dead_pid()}  # fmt: skip
    with Ledger.for_workspace(root) as ledger:
        s1 = ledger.start_session("golden", "autolab/golden", "search", 2.0, "cpu", config)
        record(ledger, "golden", s1, 1, "baseline", "keep", 2.000, num_steps=100,
               tokens_per_sec=5000.0, peak_memory_mb=12.0)  # fmt: skip
        record(ledger, "golden", s1, 2, "baseline", "keep", 2.010)
        ledger.record_noise(s1, REFERENCE, 0.0070710678, 2)  # band max(0.002, 2 x spread)
        record(ledger, "golden", s1, 3, "candidate", "discard", 2.020, reason="no improvement")
        # A win inside the band (1.995 against 2.005): re-checked (5, at 1.999), kept at the mean.
        ledger.add_experiment(ExperimentRecord(4, s1, "candidate", "4" * 40, "candidate 4"))
        record(ledger, "golden", s1, 5, "recheck", "keep", 1.999, rechecks=4)
        ledger.add_result(4, ResultRecord("keep", "mean still wins", 1.995, score=1.997))
        message, _, data = verdict_event(ledger.standings("golden"), 4, "keep", "mean")
        ledger.add_event("verdict", message, s1, 4, data)
        record(ledger, "golden", s1, 6, "candidate", "crash", reason="exit code 1")
        record(ledger, "golden", s1, 7, "candidate", "invalid", 0.5, reason="read the split")
        ledger.end_session(s1, "cancelled", "stopped by the user")
        s2 = ledger.start_session("golden", "autolab/golden", "search", 2.0, "cpu",
                                  {**config, "continues": s1})  # fmt: skip
        ledger.record_noise(s2, REFERENCE, 0.0070710678, 2)  # --resume copies the reference
        record(ledger, "golden", s2, 8, "candidate", "keep", BEST, reason="beyond the band")
        record(ledger, "golden", s2, 9, "candidate", "discard", 1.990, reason="no improvement")
        ledger.end_session(s2, "succeeded")
    ws = load_workspace(root)
    for number in (2, 8):  # the models `--experiment best|baseline` resolve to
        (ws.runs_dir / str(number)).mkdir(parents=True)
        (ws.runs_dir / str(number) / "model.pt2").write_bytes(b"")
    return ws


def test_every_view_tells_the_same_numbers(golden):
    root = golden.root
    # The owner: track.standings.
    with Ledger.for_workspace(root) as ledger:
        st = ledger.standings()
        assert ledger.verify() == []
    assert st.session_ids == [1, 2] and st.reference.bpb == REFERENCE
    assert st.reference.band == pytest.approx(0.0141421356)
    assert (st.best_number, st.best_score) == (BEST_NUMBER, BEST)
    assert st.delta == pytest.approx(BEST - REFERENCE)
    assert {r.number: r.delta for r in st.rows} == {
        n: (pytest.approx(d) if d is not None else None) for n, d in DELTAS.items()
    }
    counts = {**vars(st.counts), "failed": st.counts.failed}
    assert counts == COUNTS
    deltas = {r.number: r.delta for r in st.rows}
    best = (st.best_number, st.best_score, st.reference.bpb, st.delta)

    # `autolab results --json`
    done = cli("results", "-C", str(root), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["number"]: r["delta"] for r in rows} == deltas
    assert [r["number"] for r in rows if r["is_best"]] == [BEST_NUMBER]
    assert {r["number"]: r["score"] for r in rows}[4] == 1.997

    # `autolab results` (table) and `--tsv`
    done = cli("results", "-C", str(root))
    table = " ".join(done.stdout.split())
    assert done.returncode == 0 and "best exp 8 1.9500 (Δ -0.0550)" in table
    assert "2 kept, 2 discarded, 1 crashed, 1 invalid (2 baseline runs, 1 re-check)" in table
    tsv = cli("results", "-C", str(root), "--tsv").stdout.splitlines()
    assert tsv[4].split("\t")[1] == "1.997000" and tsv[7].split("\t")[1] == "0.000000"

    # `autolab status --json`
    done = cli("status", "-C", str(root), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["best_number"], status["best_bpb"], status["reference_bpb"],
            status["delta"]) == best  # fmt: skip
    assert status["counts"] == COUNTS and status["session_ids"] == [1, 2]

    # `autolab events --json`: each verdict as the loop wrote it
    done = cli("events", "-C", str(root), "--json", "--last", "100")
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    verdicts = {e["number"]: e["data"] for e in verdicts if e["kind"] == "verdict"}
    # (a baseline run's verdict came before the reference existed: its event has no Δ)
    assert {n: d["delta"] for n, d in verdicts.items() if n > 2} == {
        n: d for n, d in deltas.items() if n > 2
    }

    # the dashboard's API
    dash = Dashboard(golden)
    overview = dash.overview()
    assert (overview["best"]["number"], overview["best"]["score"], overview["reference"]["bpb"],
            overview["delta"]) == best  # fmt: skip
    assert {k: v for k, v in overview["counts"].items() if k != "total"} == COUNTS
    assert {r["number"]: r["delta"] for r in dash.experiments()} == deltas
    assert dash.experiment(4)["delta"] == deltas[4]
    dash.close()

    # the report's data and its markdown
    with Ledger.for_workspace(root) as ledger:
        data = collect(root, ledger, 0)
    report = data.standings
    assert (report.best_number, report.best_score, report.reference.bpb, report.delta) == best
    assert [row[0] for row in experiment_rows(data)] == [str(n) for n in DELTAS]
    assert [row[5] for row in experiment_rows(data)] == [
        "" if d is None else f"{d:+.4f}" for d in deltas.values()
    ]
    assert "1.9500 (exp 8, Δ -0.0550 vs reference)" in render_markdown(data)

    # the loop's final line, the notify payload and the prompt
    with Ledger.for_workspace(root) as ledger:
        st = ledger.standings("golden")
        assert st.best_score == BEST  # what the loop's next candidate must beat
        assert "best 1.9500 (Δ -0.0550, exp 8)" in standings_text(st)
        session = SimpleNamespace(workspace=golden, session_id=2, standings=lambda: st)
        notice = payload(ledger.events(last=1)[0], session)
        assert (notice["best_experiment"], notice["best_val_bpb"], notice["baseline_val_bpb"],
                notice["delta"]) == best  # fmt: skip
        assert notice["counts"] == COUNTS
        history = ledger.experiments(session_ids=st.session_ids)
        prompt = build_prompt(research_context(golden, st, history, 2.0, "cpu"))
    assert "Current best val_bpb: 1.950000" in prompt and "2.005000" in prompt
    assert "more than 0.014142 (the noise band)" in prompt and "on cpu" in prompt
    assert "   1  keep         2.000000  -0.0050    100    5000      12  [baseline]" in prompt

    # `--experiment best` and `baseline`
    assert select_run(golden, "best").run_dir.name == "8"
    assert "1.9500 bpb" in select_run(golden, "best").label
    assert select_run(golden, "baseline").run_dir.name == "2"


def test_compare_baseline_best_with_nothing_kept_is_one_line(tmp_path):
    root = init_workspace(tmp_path / "ws", recipe="mlp")
    with Ledger.for_workspace(root) as ledger:
        s = ledger.start_session("t", "autolab/t", "search", 2.0, "cpu", {"pid": dead_pid()})
        record(ledger, "t", s, 1, "baseline", "keep", 2.0)
        record(ledger, "t", s, 2, "baseline", "keep", 2.01)
        ledger.record_noise(s, 2.005, 0.007, 2)
        record(ledger, "t", s, 3, "candidate", "discard", 2.1)
        assert ledger.standings().best_number is None
        assert ledger.standings().best_score == 2.005  # the best is the reference
    (load_workspace(root).runs_dir / "2").mkdir(parents=True)
    (load_workspace(root).runs_dir / "2" / "model.pt2").write_bytes(b"")
    assert select_run(load_workspace(root), "best").run_dir.name == "2"
    done = cli("inspect", "-C", str(root), "--text", "anna", "--surprisal", "--compare",
               "baseline", "best")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "best and baseline are the same model: nothing was kept" in done.stderr


def test_an_edited_ledger_is_named_by_status_and_results(golden, tmp_path):
    copy = tmp_path / "ws"
    subprocess.run(["cp", "-r", str(golden.root), str(copy)], check=True)
    conn = sqlite3.connect(copy / ".autolab" / "ledger.db")
    conn.execute("UPDATE results SET status = 'keep', val_bpb = 0.1, score = 0.1 WHERE number = 9")
    conn.commit()
    conn.close()
    for command in ("status", "results"):
        done = cli(command, "-C", str(copy))
        assert done.returncode == 3, done.stderr  # printed, and marked by the exit code
        warning = " ".join(done.stderr.split())
        assert "results row of experiment 9 was edited after autolab wrote it" in warning
        assert "Traceback" not in done.stderr


def test_a_row_written_behind_the_loops_back_is_one_line(golden, tmp_path):
    copy = tmp_path / "ws"
    subprocess.run(["cp", "-r", str(golden.root), str(copy)], check=True)
    conn = sqlite3.connect(copy / ".autolab" / "ledger.db")
    conn.execute("INSERT INTO experiments (number, kind) VALUES (10, 'candidate')")
    conn.commit()
    conn.close()
    with Ledger.for_workspace(copy) as ledger:
        # What the loop's next write meets: an error that is a one-line UsageError, no traceback.
        with pytest.raises(LedgerError, match="experiment 10 already exists"):
            ledger.add_experiment(ExperimentRecord(10, 2, "candidate", "a" * 40, "next"))
    done = cli("results", "-C", str(copy))
    assert done.returncode == 3 and "experiment 10 was inserted outside autolab" in " ".join(
        done.stderr.split()
    )


def test_results_tsv_and_branch_disagreements_are_one_line_each(golden, tmp_path):
    copy = tmp_path / "ws"
    subprocess.run(["cp", "-r", str(golden.root), str(copy)], check=True)
    (copy / "results.tsv").write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n")
    gitrepo.git(copy, "branch", "autolab/golden")  # at the base commit, not exp 8's
    done = cli("status", "-C", str(copy))
    assert done.returncode == 0, done.stderr  # a disagreement warns; resume repairs it
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "results.tsv differs from the ledger" in lines[0]
    assert "branch autolab/golden is at" in lines[1] and "exp 8's commit" in lines[1]
    assert os.path.exists(copy / "results.tsv")


# -- a real short session ------------------------------------------------------------------------


def views_tell(root) -> dict:
    """Best, reference, each Δ and the counts, as every view tells them: asserted equal to the
    standings' (the one owner), which are returned."""
    with Ledger.for_workspace(root) as ledger:
        st = ledger.standings()
        assert ledger.verify() == []
    deltas = {r.number: r.delta for r in st.rows}
    best = (st.best_number, st.best_score, st.reference.bpb, st.delta)
    counts = {**vars(st.counts), "failed": st.counts.failed}
    rows = json.loads(cli("results", "-C", str(root), "--json").stdout)
    assert {r["number"]: r["delta"] for r in rows} == deltas
    assert {r["number"]: r["score"] for r in rows} == {r.number: r.score for r in st.rows}
    assert [r["number"] for r in rows if r["is_best"]] == (
        [st.best_number] if st.best_number is not None else []
    )
    status = json.loads(cli("status", "-C", str(root), "--json").stdout)
    assert (status["best_number"], status["best_bpb"], status["reference_bpb"],
            status["delta"]) == best  # fmt: skip
    assert status["counts"] == counts and status["session_ids"] == st.session_ids
    events = cli("events", "-C", str(root), "--json", "--last", "10000").stdout.splitlines()
    verdicts = {e["number"]: e["data"] for e in map(json.loads, events) if e["kind"] == "verdict"}
    kinds = {r.number: r.kind for r in st.rows}
    assert {n: d["delta"] for n, d in verdicts.items() if kinds[n] != "baseline"} == {
        n: d for n, d in deltas.items() if kinds[n] != "baseline"
    }  # (a baseline run's verdict came before the reference existed)
    dash = Dashboard(load_workspace(root))
    overview = dash.overview()
    assert (overview["best"]["number"], overview["best"]["score"],
            overview["reference"]["bpb"], overview["delta"]) == best  # fmt: skip
    assert {k: v for k, v in overview["counts"].items() if k != "total"} == counts
    assert {r["number"]: r["delta"] for r in dash.experiments()} == deltas
    dash.close()
    with Ledger.for_workspace(root) as ledger:
        report = collect(root, ledger, 0).standings
    assert (report.best_number, report.best_score, report.reference.bpb, report.delta) == best
    return st


@pytest.fixture(scope="module")
def researched(tmp_path_factory):
    """A real ledger: `autolab research` (2 baseline runs, 2 candidates), then `--resume` for
    one more, each with a notify command that keeps every payload."""
    tmp = tmp_path_factory.mktemp("real")
    root, notices = tmp / "ws", tmp / "notices.jsonl"
    notify = f"{sys.executable} -c \"import sys; open({str(notices)!r}, 'a').write(" \
             f"sys.stdin.read().strip() + chr(10))\""  # fmt: skip
    done = cli("init", str(root), "--recipe", "mlp", "--budget", "1s")
    assert done.returncode == 0, done.stderr
    runs = []
    for extra in ([], ["--resume"]):
        # No confirmation here: tests/test_confirm.py checks the views agree on that.
        done = cli("research", "--no-prune",
                   "-C", str(root), "--plain", "--tag", "real", "--max-experiments",
                   "3" if extra else "2", "--baseline-runs", "2", "--notify-cmd", notify,
                   "--confirm", "0", *extra,
                   timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs.append(done.stdout)
    return root, runs, [json.loads(line) for line in notices.read_text().splitlines()]


def test_a_real_session_tells_the_same_numbers_everywhere(researched):
    root, outputs, notices = researched
    st = views_tell(root)
    assert len(st.session_ids) == 2 and st.reference is not None
    assert st.counts.baseline_runs == 2
    assert sum(1 for r in st.rows if r.kind == "candidate") == 3
    # The research command's last line and the notify payload at the end of the last session.
    assert " ".join(outputs[-1].split()).endswith(" ".join(standings_text(st).split()))
    ended = [n for n in notices if n["event"] == "session_ended"]
    assert [n["session"] for n in ended] == st.session_ids
    last = ended[-1]
    assert (last["best_experiment"], last["best_val_bpb"], last["baseline_val_bpb"],
            last["delta"]) == (st.best_number, st.best_score, st.reference.bpb,
                               st.delta)  # fmt: skip
    assert last["counts"] == {**vars(st.counts), "failed": st.counts.failed}


def test_a_run_reports_at_full_precision(researched):
    """The outcome is read from the run's result.json, not from the rounded printed block: an
    MLP's tens of thousands of parameters are not "0.0M"."""
    root, _, _ = researched
    with Ledger.for_workspace(root) as ledger:
        views = [v for v in ledger.experiments() if v.val_bpb is not None]
    runs_dir = load_workspace(root).runs_dir
    for view in views:
        reported = json.loads((runs_dir / str(view.number) / "result.json").read_text())
        assert view.num_params_M == reported["num_params_M"] > 0
        assert view.tokens_per_sec == reported["tokens_per_sec"]
    assert any(round(v.num_params_M, 1) != v.num_params_M for v in views)
