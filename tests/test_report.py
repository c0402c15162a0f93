"""`autolab report`: the chart, report.md and a self-contained report.html, from real ledgers."""

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from autolab import gitrepo
from autolab.report.build import build_report
from autolab.report.chart import MANUAL_COLOR, progress_chart
from autolab.report.manual import manual_trace
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.track.standings import compute

RUNNER = """
import sys
from autolab import cli
for name in ("events", "status", "report"):
    if name not in cli.COMMANDS:
        cli.COMMANDS.append(name)
sys.exit(cli.main(sys.argv[1:]))
"""
# A resource the page would fetch: src=, href=, url(...) or @import pointing at the network.
REMOTE = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import""")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def researched(tmp_path_factory) -> tuple[Path, dict]:
    """A real tiny research session: init, then two candidates after one baseline run."""
    root = tmp_path_factory.mktemp("real")
    env = {"AUTOLAB_HOME": str(root / "home"), "COLUMNS": "120"}
    ws = root / "ws"
    for args in (("init", str(ws), "--recipe", "mlp", "--budget", "2s"),
                 ("research", "--no-prune",
                  "-C", str(ws), "--max-experiments", "2", "--baseline-runs", "1",
                  "--plain", "--confirm", "0")):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                              text=True, env={**os.environ, **env}, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    return ws, env


def test_report_of_a_real_session(researched):
    ws, env = researched
    done = cli("report", "-C", str(ws), "--samples", "3", env=env)
    assert done.returncode == 0, done.stderr
    out = ws / ".autolab" / "report"
    assert sorted(p.name for p in out.iterdir()) == ["progress.png", "report.html", "report.md"]
    width, height = png_size(out / "progress.png")
    assert 800 <= width <= 3000 and 400 <= height <= 2000
    page = (out / "report.html").read_text()
    assert not REMOTE.search(page)
    assert "data:image/png;base64," in page
    with Ledger.for_workspace(ws) as ledger:
        session = ledger.latest_session()
        views = ledger.experiments(session.id)
        standings = ledger.standings()
    kept = [v for v in views if v.kind == "candidate" and v.status == "keep"]
    markdown = (out / "report.md").read_text()
    for text in (page, markdown):
        assert f"{standings.best_score:.4f}" in text
        assert f"{session.noise.baseline_bpb:.4f}" in text
        assert "3 samples from exp" in text
        assert ("diff --git a/train.py" in text) == bool(kept)


@pytest.fixture
def synthetic(tmp_path) -> Path:
    """A git workspace whose train.py changed twice, with a ledger filled by hand."""
    ws = tmp_path / "ws"
    ws.mkdir()
    gitrepo.git(ws, "init", "-q", "-b", "main")
    (ws / "train.py").write_text("LR = 1e-3  # learning rate\nDEPTH = 2\n")
    base = gitrepo.commit_all(ws, "init")
    (ws / "train.py").write_text("LR = 3e-3  # learning rate\nDEPTH = 2\n")
    first = gitrepo.commit_all(ws, "raise LR")
    (ws / "train.py").write_text("LR = 3e-3  # learning rate\nDEPTH = 4\n")
    second = gitrepo.commit_all(ws, "deeper <model> & more")
    with Ledger.for_workspace(ws) as ledger:
        session = ledger.start_session("t", "autolab/t", "llm", 60, "cpu",
                                       {"base_commit": base, "pid": 1})  # fmt: skip
        rows = [
            ("baseline", base, "baseline (seed 0)", ResultRecord("keep", val_bpb=1.50)),
            ("candidate", first, "raise LR", ResultRecord("keep", val_bpb=1.45)),
            ("candidate", first, "tie weights", ResultRecord("discard", val_bpb=1.47)),
            ("candidate", first, "bad idea", ResultRecord("crash", "CUDA error")),
            ("candidate", first, "way off", ResultRecord("discard", val_bpb=2.9)),
            ("candidate", second, "deeper <model> & more", ResultRecord("keep", val_bpb=1.4)),
            ("candidate", second, "slow", ResultRecord("timeout", "over the limit")),
        ]
        for number, (kind, commit, desc, result) in enumerate(rows, start=1):
            ledger.add_experiment(ExperimentRecord(
                number, session, kind, commit, desc, llm_prompt_tokens=1000,
                llm_completion_tokens=200, llm_cost_usd=0.01))  # fmt: skip
            ledger.add_result(number, result)
        ledger.record_noise(session, 1.5, 0.004, 1)
        ledger.end_session(session, "succeeded")
    return ws


def test_report_of_a_synthetic_session(synthetic, tmp_path):
    paths = build_report(synthetic, tmp_path / "out", num_samples=0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "progress.png", "report.html", "report.md"]  # fmt: skip
    assert png_size(paths["png"])[0] > 800
    page, markdown = paths["html"].read_text(), paths["md"].read_text()
    assert not REMOTE.search(page)
    assert "deeper &lt;model&gt; &amp; more" in page  # escaped
    assert '<span class="del">-LR = 1e-3  # learning rate</span>' in page
    assert '<span class="add">+DEPTH = 4</span>' in page
    assert "| 2 | raise LR | 1.4500 | -0.0500 | -0.0500 |" in markdown
    assert "| 6 | deeper <model> & more | 1.4000 | -0.0500 | -0.1000 |" in markdown
    assert "| best val_bpb | 1.4000 (exp 6, Δ -0.1000 vs reference) |" in markdown
    counts = "2 kept, 2 discarded, 1 crashed, 1 timed out (plus 1 baseline run)"
    assert f"| experiments | {counts} |" in markdown
    # Every experiment tried, with its verdict and Δ, not only the keeps.
    assert "| 3 | 1 | candidate | discard | 1.4700 | -0.0300 | +0.0200 | tie weights |  |" in (
        markdown
    )
    assert "| 4 | 1 | candidate | crash |  |  |  | bad idea | CUDA error |" in markdown
    assert "6,000 prompt + 1,200 completion, $0.06" in markdown
    assert "+DEPTH = 4" in markdown and "-LR = 1e-3" in markdown


def test_chart_of_an_empty_session(tmp_path):
    path = progress_chart([], compute([], None, {}), tmp_path / "empty.png")
    assert png_size(path)[0] > 800


def test_report_without_a_session_is_a_usage_error(tmp_path):
    Ledger.for_workspace(tmp_path).close()
    done = cli("report", "-C", str(tmp_path), env={})
    assert done.returncode == 2 and "autolab research" in done.stderr


def manual_pixels(path: Path) -> int:
    """How many pixels of the chart are the manual runs' purple: only their marks use it."""
    from matplotlib.image import imread

    rgb = imread(path)[..., :3]
    target = [int(MANUAL_COLOR[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return int((abs(rgb - target) < 0.02).all(axis=-1).sum())


def test_chart_draws_manual_runs_beside_a_session(synthetic, tmp_path):
    with Ledger.for_workspace(synthetic) as ledger:
        commit = ledger.experiment(6).commit_sha
        for number, status, bpb in ((8, "keep", 1.42), (9, "discard", 1.46)):
            ledger.add_experiment(ExperimentRecord(number, None, "manual", commit, "by hand",
                                                   researcher="manual"))  # fmt: skip
            ledger.add_result(number, ResultRecord(status, val_bpb=bpb))
        views, standings = ledger.experiments(), ledger.standings("t")
        session_views = [v for v in views if v.session_id is not None]
        trace = manual_trace(ledger)
    alone = progress_chart(session_views, standings, tmp_path / "alone.png")
    both = progress_chart(session_views, standings, tmp_path / "both.png", trace)
    assert manual_pixels(alone) == 0 and manual_pixels(both) > 100
    markdown = build_report(synthetic, tmp_path / "out", num_samples=0)["md"].read_text()
    assert "| 8 | manual | keep ★ | 1.4200 |  | by hand |" in markdown
    assert "| 9 | manual | discard | 1.4600 | +0.0400 | by hand |" in markdown


def test_report_of_manual_runs_alone(tmp_path):
    """No research session: the report is the person's runs, from real `autolab train` runs."""
    env = {"AUTOLAB_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    ws = tmp_path / "ws"
    for args in (
        ("init", str(ws), "--recipe", "mlp", "--budget", "1s"),
        ("train", "-C", str(ws), "--samples", "0"),
        ("train", "-C", str(ws), "--samples", "0", "--repeat", "2", "-m", "twice"),
    ):
        done = subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                              text=True, env={**os.environ, **env}, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    done = cli("report", "-C", str(ws), "--samples", "2", env=env)
    assert done.returncode == 0, done.stderr
    out = ws / ".autolab" / "report"
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    with Ledger.for_workspace(ws) as ledger:
        trace = manual_trace(ledger)
    best = trace.standings.best_number
    assert [v.kind for v in trace.views] == ["manual", "manual", "recheck"] and best in (1, 2)
    assert markdown.startswith("# autolab report: your runs (autolab train)")
    assert f"Your best: {trace.standings.best_score:.4f} (exp {best}) over 2 runs" in markdown
    assert f"| noise band | {trace.band:.4f} (from the --repeat runs of exp 2) |" in markdown
    assert "| 2 | manual | " in markdown and "| 3 | repeat of #2 | " in markdown
    assert f"2 samples from exp {best}" in markdown
    assert "## Every experiment" not in markdown and not REMOTE.search(page)
    assert manual_pixels(out / "progress.png") > 100
