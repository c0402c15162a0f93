"""The dashboard in a real browser (Debian's Chromium through Playwright) following a real,
short research session on tiny data: rows appear, the live curve grows without a reload, an
experiment shows its diff, and Stop ends the session.

Screenshots go to a tmp folder (or $AUTOLAB_SCREENSHOTS), printed at the end for a look.
"""

import math
import os
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    # In CI (.ci/run installs it) a missing browser is a failure, not a quiet skip.
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} not found under CI=true: .ci/run should install chromium")
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("uvicorn")

from tests_support import branch_of_scores  # noqa: E402

from autolab.dashboard.app import make_server  # noqa: E402
from autolab.workspace import init_workspace, load_workspace  # noqa: E402

# The progress chart's running-best lines, as plotted.
RUNNING_BEST = """() => (document.getElementById('progress-chart').data || [])
    .filter((t) => t.name === 'running best')
    .map((t) => ({x: Array.from(t.x), y: Array.from(t.y)}))"""
# The live training chart's last trace is the running (or latest) experiment.
LIVE_TRACE = """() => {
  const d = document.getElementById('live-chart').data || [];
  const t = d[d.length - 1];
  return t ? [t.meta ? t.meta.number : null, t.x.length] : [null, 0];
}"""


# The live chart's line (the smoothed one, with a legend entry) of experiment N, or null.
TRACE_OF = """(n) => {
  const t = (document.getElementById('live-chart').data || [])
    .filter((t) => t.meta && t.meta.number === n && t.showlegend !== false).pop();
  return t ? {name: t.name, x: Array.from(t.x), y: Array.from(t.y)} : null;
}"""


def autolab(*args: str, env: dict, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "autolab", *args], env=env, **kwargs)


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_dashboard_follows_a_research_session(tmp_path):
    shots = Path(os.environ.get("AUTOLAB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AUTOLAB_HOME": str(tmp_path / "home")}
    ws = tmp_path / "ws"
    init = autolab("init", str(ws), "--recipe", "mlp", "--budget", "2s", env=env)
    assert init.wait(60) == 0

    # The dashboard starts first, on an empty workspace: it fills in once the ledger appears.
    server, sock = make_server(load_workspace(ws), "127.0.0.1", 0, None)
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"

    log = open(tmp_path / "research.log", "w")
    research = autolab(
        "research", "--no-prune",
        "-C", str(ws), "--max-experiments", "3", "--baseline-runs", "1", "--plain",
        "--confirm", "0",
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    errors: list[str] = []

    def research_alive() -> None:
        """A session that ended on its own (it fails when autolab's code changes under it)
        makes the rest meaningless: say why, with its output."""
        if research.poll() is not None:
            raise AssertionError(
                "research ended early:\n" + (tmp_path / "research.log").read_text()
            )

    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url)
            page.evaluate("() => { window.__sameLoad = true; }")

            # Rows appear as the loop records experiments.
            page.wait_for_selector("#table tbody tr[data-n='1']", timeout=40_000)
            assert page.text_content("#state b") == "running"

            # The live curve grows while the page stays loaded: points are added to the running
            # experiment's trace, and the trace moves on to the next experiment.
            seen: list[tuple] = []

            def grown():
                research_alive()
                n, count = page.evaluate(LIVE_TRACE)
                if count and (not seen or seen[-1] != (n, count)):
                    seen.append((n, count))
                same = any(a[0] == b[0] and b[1] > a[1] for a, b in pairwise(seen))
                return len({n for n, _ in seen}) >= 2 or (same and len(seen) >= 2)

            wait_for(grown, 45, f"the live curve to grow (saw {seen})", interval=0.2)
            assert page.evaluate("() => window.__sameLoad") is True
            wait_for(
                lambda: research_alive() or page.locator("#table tbody tr[data-n='2']").count(),
                40,
                "experiment 2",
            )
            page.screenshot(path=str(shots / "home-live.png"), full_page=True)

            # An experiment's page: its diff against its parent, coloured.
            page.click("#table tbody tr[data-n='2'] td.desc")
            page.wait_for_selector("#diff-card pre.diff span.add", timeout=15_000)
            assert page.locator("#diff-card pre.diff span.del").count() >= 1
            assert "#2" in page.text_content(".exp-head h1")
            page.screenshot(path=str(shots / "experiment.png"), full_page=True)
            page.click("a.back")
            page.wait_for_selector("#home:not([hidden])")

            # Stop: armed by a first click, sent by the second. "Stop" waits for the running
            # experiment and leaves "Stop now" offered; that one ends the session at once.
            research_alive()
            page.wait_for_selector("#stop:not([disabled])", timeout=10_000)
            page.click("#stop")
            page.click("#stop")
            page.wait_for_selector("#stop[disabled]")
            if research.poll() is None:
                page.wait_for_selector("#stop-now:not([disabled])", timeout=10_000)
                page.click("#stop-now")
                page.click("#stop-now")
            page.wait_for_selector("#state[data-state='cancelled']", timeout=40_000)
            assert research.wait(30) == 0
            page.wait_for_selector("#stop-now[disabled]")
            page.screenshot(path=str(shots / "stopped.png"), full_page=True)

            # The header's best and Δ are the API's standings, never recomputed by the page.
            def header_matches():
                o = page.evaluate("() => getJSON('/api/overview')")
                best = f"{o['best']['score']:.4f}" if o["best"] else "—"
                d = o["delta"]
                sign = "—" if d is None else "−" if d < 0 else "+" if d > 0 else "±"
                delta = "—" if d is None else f"{sign}{abs(d):.4f}"
                return page.text_content("#best") == best and page.text_content("#gain").startswith(
                    delta
                )

            wait_for(header_matches, 10, "the header's best and Δ to match /api/overview")

            # The chart's running best is the API's line (track.standings.best_lines), from
            # the reference at the first row, only carried further right to the last row shown.
            def running_best_drawn():
                lines = page.evaluate("() => getJSON('/api/overview')")["running_best"]
                drawn = page.evaluate(RUNNING_BEST)
                return (
                    lines
                    and lines[0]["x"][0] == 0.5
                    and len(drawn) == len(lines)
                    and all(
                        d["y"] == line["y"] and d["x"][:-1] == line["x"][:-1]
                        for d, line in zip(drawn, lines, strict=True)
                    )
                )

            wait_for(running_best_drawn, 10, "the chart's running best to be the API's line")
            assert page.evaluate("() => window.__sameLoad") is True

            # The harness measured the baseline run's dev loss; the page draws it when picked.
            page.click("#table tbody tr[data-n='1'] input[type=checkbox]")
            page.select_option("#curve-controls select[data-curve=metric]", "dev_loss")
            dev = wait_for(lambda: page.evaluate(TRACE_OF, 1), 10, "#1's dev-loss trace")
            assert 1 <= len(dev["y"]) <= 4 and all(0 < y < 10 for y in dev["y"]), dev
            page.screenshot(path=str(shots / "stopped-dev-loss.png"), full_page=True)
            browser.close()
    finally:
        if research.poll() is None:
            research.kill()
            research.wait()
        log.close()
        server.should_exit = True
        serving.join(10)
    assert not errors, errors
    print(f"screenshots in {shots}; live trace samples {seen}")


def test_manual_runs_appear_on_the_progress_chart(tmp_path):
    """Two hand edits trained with `autolab train`: the person's runs are rows, points on the
    progress chart (their own trace), and a run's page diffs against the previous run."""
    env = {**os.environ, "AUTOLAB_HOME": str(tmp_path / "home")}
    ws = tmp_path / "ws"
    assert autolab("init", str(ws), "--recipe", "mlp", "--budget", "1s", env=env).wait(60) == 0
    train = ["train", "-C", str(ws), "--samples", "0"]
    assert autolab(*train, env=env, stdout=subprocess.DEVNULL).wait(120) == 0
    source = (ws / "train.py").read_text()
    (ws / "train.py").write_text(source.replace("N_HIDDEN = 128", "N_HIDDEN = 64"))
    assert autolab(*train, env=env, stdout=subprocess.DEVNULL).wait(120) == 0

    server, sock = make_server(load_workspace(ws), "127.0.0.1", 0, None)
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/")
            page.wait_for_selector("#table tbody tr[data-n='2']", timeout=20_000)
            assert "manual" in page.text_content("#table tbody tr[data-n='2']")
            manual = """() => (document.getElementById('progress-chart').data || [])
                .filter((t) => t.name === 'manual (autolab train)').map((t) => t.x)"""
            traces = wait_for(lambda: page.evaluate(manual), 10, "the manual trace")
            assert traces == [[1, 2]]
            page.click("#table tbody tr[data-n='2'] td.desc")
            page.wait_for_selector(".manual-diff pre.diff span.add", timeout=15_000)
            heads = page.locator(".manual-diff h2").all_text_contents()
            assert heads[0] == "Diff against your previous run #1"
            browser.close()
    finally:
        server.should_exit = True
        serving.join(10)
    assert not errors, errors


def test_panels_a_wandb_user_reaches_for(tmp_path):
    """On a finished branch of 10 candidates: the curve's metric, x axis and smoothing; legends
    with descriptions; the params table against the parent; the what-mattered page."""
    shots = Path(os.environ.get("AUTOLAB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    root = init_workspace(tmp_path / "ws", recipe="mlp")
    lrs = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512]
    hidden = [64, 256, 128, 64, 256, 128, 256, 64, 128, 64]
    branch_of_scores(root, [(lr, h, 2.0 + abs(math.log2(lr / 0.016)) / 10)
                            for lr, h in zip(lrs, hidden, strict=True)])  # fmt: skip
    server, sock = make_server(load_workspace(root), "127.0.0.1", 0, None)
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url)
            page.wait_for_selector("#table tbody tr[data-n='11']", timeout=20_000)
            live = wait_for(lambda: page.evaluate(TRACE_OF, 11), 10, "#11's curve")
            assert live["name"] == "#11 lr 0.512, hidden 64" and len(live["y"]) == 40

            # The metric picker and the x axis: the dev loss, measured 4 times, over tokens.
            page.select_option("#curve-controls select[data-curve=metric]", "dev_loss")
            page.select_option("#curve-controls select[data-curve=x]", "tokens")
            dev = page.evaluate(TRACE_OF, 11)
            assert dev["x"] == [2048 * s for s in (10, 20, 30, 40)] and len(dev["y"]) == 4
            layout = page.evaluate("() => document.getElementById('live-chart').layout")
            assert layout["yaxis"]["title"]["text"] == "dev loss"

            # Smoothing: an EMA drawn over the raw curve, which stays, faint, beneath it.
            page.select_option("#curve-controls select[data-curve=metric]", "loss")
            raw = page.evaluate(TRACE_OF, 11)["y"]
            page.fill("#curve-controls input[data-curve=smoothing]", "0.9")
            smoothed = page.evaluate(TRACE_OF, 11)["y"]
            assert smoothed[0] == pytest.approx(raw[0])  # debiased: the first point is itself
            wiggle = lambda ys: sum(abs(b - a) for a, b in pairwise(ys))  # noqa: E731
            assert wiggle(smoothed) < 0.6 * wiggle(raw)
            assert page.text_content("#curve-controls .smoothing-value") == "0.90"
            lines = page.evaluate("() => document.getElementById('live-chart').data.length")

            # An overlay from the table is named by its description in the legend, as the best
            # run's dotted one is.
            assert page.evaluate(TRACE_OF, 5)["name"] == "best #5 lr 0.008, hidden 64"
            page.click("#table tbody tr[data-n='3'] input[type=checkbox]")
            overlay = wait_for(lambda: page.evaluate(TRACE_OF, 3), 10, "#3's overlay")
            assert overlay["name"] == "#3 lr 0.002, hidden 256"
            count = page.evaluate("() => document.getElementById('live-chart').data.length")
            assert count == lines + 2  # its line and, smoothed, its raw line
            page.screenshot(path=str(shots / "panels-home.png"), full_page=True)

            # The experiment page: its constants against its parent's, the changed ones marked.
            page.click("#table tbody tr[data-n='6'] td.desc")
            page.wait_for_selector("#params-table tr.changed", timeout=15_000)
            changed = page.locator("#params-table tr.changed td:first-child").all_text_contents()
            assert changed == ["N_HIDDEN", "LEARNING_RATE"]
            assert "changed from its parent #1" in page.text_content("#params-card .card-head")
            row = page.locator("#params-table tr.changed").nth(1).locator("td")
            assert row.all_text_contents()[:3] == ["LEARNING_RATE", "0.016", "0.005"]
            all_rows = page.locator("#params-table tbody tr").count()
            page.check("#params-changed-only")
            assert page.locator("#params-table tbody tr:visible").count() == 2 < all_rows
            page.screenshot(path=str(shots / "panels-experiment.png"), full_page=True)

            # What mattered: the importance bars, a scatter per constant, parallel coordinates.
            page.click("#nav-mattered")
            page.wait_for_selector("#importance-chart .main-svg", timeout=20_000)
            bars = page.evaluate("() => document.getElementById('importance-chart').data[0].y")
            assert bars[-1] == "LEARNING_RATE" and sorted(bars) == ["LEARNING_RATE", "N_HIDDEN"]
            assert page.locator(".scatter-grid .param-scatter").count() == 2
            par = page.evaluate("() => { const el = document.getElementById('parcoords-chart');"
                                " return [el.layout.xaxis.ticktext, el.data.length] }")  # fmt: skip
            assert par == [["N_HIDDEN", "LEARNING_RATE", "val_bpb"], 11]  # a line each
            points = page.evaluate("() => document.getElementById('scatter-1').data"
                                   ".reduce((n, t) => n + t.x.length, 0)")  # fmt: skip
            assert points == 11
            page.screenshot(path=str(shots / "panels-mattered.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        serving.join(10)
    assert not errors, errors
    print(f"screenshots in {shots}")
