"""The dashboard in a real browser (Debian's Chromium through Playwright) following a real,
short research session on tiny data: rows appear, the live curve grows without a reload, an
experiment shows its diff, and Stop ends the session.

Screenshots go to a tmp folder (or $AUTOLAB_SCREENSHOTS), printed at the end for a look.
"""

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

from autolab.dashboard.app import make_server  # noqa: E402
from autolab.workspace import load_workspace  # noqa: E402

# The live training chart's last trace is the running (or latest) experiment.
LIVE_TRACE = """() => {
  const d = document.getElementById('live-chart').data || [];
  const t = d[d.length - 1];
  return t ? [t.meta ? t.meta.number : null, t.x.length] : [null, 0];
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
        "research", "-C", str(ws), "--max-experiments", "3", "--baseline-runs", "1", "--plain",
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
            assert page.evaluate("() => window.__sameLoad") is True
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
