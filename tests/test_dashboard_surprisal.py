"""The dashboard's surprisal panel: its API on real models (the 2 s MLP and the hand-built bigram
of test_inspect), its errors, and the panel in a real browser comparing the two.

Ledger: 1 the MLP (baseline), 2 the bigram (best, a change of 1), 3 a crash, 4 still running.
"""

import math
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402
from test_dashboard_api import serving  # noqa: E402
from test_inspect import NAMES, Bigram, copy_with_bigram, trained  # noqa: E402,F401

from autolab import gitrepo  # noqa: E402
from autolab.dashboard import surprisal as panel  # noqa: E402
from autolab.dashboard.app import create_app  # noqa: E402
from autolab.harness.handover import MODEL_INFO_FILE  # noqa: E402
from autolab.inspect import select  # noqa: E402
from autolab.inspect.surprisal import comparison_json, surprisal  # noqa: E402
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord  # noqa: E402
from autolab.workspace import load_workspace  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def lab(trained, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """A copy of the trained workspace with a research session in its ledger."""
    ws = tmp_path_factory.mktemp("surprisal") / "ws"
    log_probs = copy_with_bigram(trained, ws)
    base = gitrepo.head(ws)
    train_py = ws / "train.py"
    train_py.write_text(train_py.read_text().replace("N_HIDDEN = ", "N_HIDDEN = 2 * "))
    changed = gitrepo.commit_all(ws, "a bigram")
    with Ledger.for_workspace(ws) as ledger:
        sid = ledger.start_session("t", "autolab/t", "search", 2.0, "cpu",
                                   {"base_commit": base, "pid": os.getpid()})  # fmt: skip
        rows = [
            (1, "baseline", "", base, "baseline (seed 0)", ResultRecord("keep", "baseline", 3.7)),
            (2, "candidate", base, changed, "a bigram", ResultRecord("keep", "better", 2.9)),
            (3, "candidate", changed, changed, "boom", ResultRecord("crash", "exit code 1")),
            (4, "candidate", changed, changed, "now", None),
        ]
        for number, kind, parent, commit, text, result in rows:
            ledger.add_experiment(ExperimentRecord(number, sid, kind, commit, text, parent,
                                                   "search", seed=0))  # fmt: skip
            if result:
                ledger.add_result(number, result)
    return {**trained, "ws": ws, "workspace": load_workspace(ws), "bigram": log_probs}


@pytest.fixture(scope="module")
def client(lab):
    with TestClient(create_app(lab["workspace"]), base_url="http://127.0.0.1:8765") as c:
        yield c


def loaded(lab, number: int):
    selected = select.select_run(lab["workspace"], str(number))
    return select.load_selected(selected, lab["data_dir"])


def test_scores_as_autolab_inspect(client, lab):
    r = client.get("/api/experiments/1/surprisal", params={"text": NAMES})
    assert r.status_code == 200, r.text
    out = r.json()
    run = loaded(lab, 1)
    expected = surprisal(run.model, run.info, run.tokenizer, run.meta, NAMES)
    assert out["number"] == 1 and out["run"].startswith("exp 1 (keep")
    assert out["text"] == NAMES and out["text_source"] == "given"
    assert out["bpb"] == pytest.approx(expected.bpb, abs=1e-9)
    assert "".join(t["text"] for t in out["tokens"]) == NAMES
    assert [t["bits"] for t in out["tokens"]] == pytest.approx([t.bits for t in expected.tokens])
    assert out["uniform_bits"] == pytest.approx(math.log2(run.tokenizer.vocab_size))


def test_compare_is_the_cli_json_with_this_experiment_as_b(client, lab):
    r = client.post("/api/experiments/2/surprisal", json={"text": NAMES, "compare": 1})
    assert r.status_code == 200, r.text
    out = r.json()
    a, b = loaded(lab, 1), loaded(lab, 2)
    expected = comparison_json(
        a.run, surprisal(a.model, a.info, a.tokenizer, a.meta, NAMES),
        b.run, surprisal(b.model, b.info, b.tokenizer, b.meta, NAMES),
    )  # fmt: skip
    assert (out["a"]["number"], out["b"]["number"]) == (1, 2)
    for side in ("a", "b"):
        assert out[side]["bpb"] == pytest.approx(expected[side]["bpb"], abs=1e-9)
    assert [t["diff_bits"] for t in out["tokens"]] == pytest.approx(
        [t["diff_bits"] for t in expected["tokens"]]
    )
    # The bigram's bits are its table's: -log2 P(token | previous token).
    table = lab["bigram"].double()
    ids = [1] + [t["token_id"] for t in out["tokens"]]  # 1: the separator ⏎ in front
    hand = [-table[x, y].item() / math.log(2) for x, y in zip(ids, ids[1:], strict=False)]
    assert [t["bits_b"] for t in out["tokens"]] == pytest.approx(hand, abs=1e-5)
    for t in out["tokens"]:
        assert t["diff_bits"] == pytest.approx(t["bits_b"] - t["bits_a"])


def test_no_text_scores_the_start_of_the_dev_split(client, lab):
    out = client.get("/api/experiments/2/surprisal").json()
    assert out["text_source"] == "dev"
    run = loaded(lab, 2)
    assert out["text"] == panel.default_text(lab["data_dir"], run.tokenizer, run.meta)
    assert panel.DEFAULT_TEXT_BYTES // 2 < len(out["text"].encode()) <= panel.DEFAULT_TEXT_BYTES + 8
    assert out["text"].endswith("\n")  # whole names
    assert out["text"].split("\n")[0] in open_dev_names(lab)


def open_dev_names(lab) -> set[str]:
    from autolab.data import load_tokenizer, read_tokens
    from autolab.harness.data import read_meta

    meta = read_meta(lab["data_dir"])
    dev = read_tokens(lab["data_dir"] / "dev.bin", meta)
    return set(load_tokenizer(lab["data_dir"]).decode(dev).split("\n"))


@pytest.mark.parametrize(
    "request_args, status, message",
    [
        (("GET", "/api/experiments/99/surprisal"), 404, "no experiment 99 in the ledger"),
        (("GET", "/api/experiments/2/surprisal?compare=99"), 404, "no experiment 99"),
        (("GET", "/api/experiments/3/surprisal"), 409, "exp 3 left no model (crash: exit code 1)"),
        (("GET", "/api/experiments/1/surprisal?compare=4"), 409, "exp 4 is still training"),
        (("GET", "/api/experiments/2/surprisal?text=Emma7"), 400,
         "the text has characters not in the vocabulary: '7', 'E'"),
        (("GET", "/api/experiments/2/surprisal?text="), 400, "the text is too short to score"),
        (("GET", "/api/experiments/2/surprisal?compare=best"), 400,
         "compare must be an experiment number, not 'best'"),
        (("GET", "/api/experiments/2/surprisal?compare=2"), 400, "exp 2 compared with itself"),
        (("POST", "/api/experiments/2/surprisal", {"content": b"{nope"}), 400, "send JSON"),
        (("POST", "/api/experiments/2/surprisal", {"json": ["a"]}), 400, "send a JSON object"),
        (("POST", "/api/experiments/2/surprisal", {"json": {"text": 5}}), 400,
         "text must be a string"),
        (("POST", "/api/experiments/2/surprisal",
          {"json": {"text": "a" * (panel.MAX_TEXT_CHARS + 1)}}), 413,
         "the text is 20,001 characters; the panel scores at most 20,000"),
        (("POST", "/api/experiments/2/surprisal", {"content": b"a" * 200_000}), 413,
         "the text is too long"),
    ],
)  # fmt: skip
def test_errors_are_one_line_4xx(client, request_args, status, message):
    method, path, *kwargs = request_args
    r = client.request(method, path, **(kwargs[0] if kwargs else {}))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error and "\n" not in error


def test_a_damaged_model_is_a_one_line_409(client, lab):
    """Exp 3 left no model; give it a damaged one (the real info, a truncated archive)."""
    runs = lab["workspace"].runs_dir
    (runs / "3").mkdir(parents=True, exist_ok=True)
    damaged = [runs / "3" / panel.MODEL_FILE, runs / "3" / MODEL_INFO_FILE]
    damaged[1].write_bytes((runs / "1" / MODEL_INFO_FILE).read_bytes())
    damaged[0].write_bytes((runs / "1" / panel.MODEL_FILE).read_bytes()[:2000])
    try:
        r = client.get("/api/experiments/3/surprisal", params={"text": "emma"})
    finally:
        for path in damaged:
            path.unlink()
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert "cannot be loaded" in error and "train it again" in error and "\n" not in error


def test_experiment_page_offers_its_parent_then_the_best(client):
    def compare(n):
        return client.get(f"/api/experiments/{n}").json()["compare"]

    two = compare(2)
    assert two["default"] == 1  # the kept run of the commit it changed
    assert [c["number"] for c in two["choices"]] == [1] and two["choices"][0]["parent"]
    assert compare(1)["default"] == 2  # a baseline has no parent: the best
    assert compare(3)["default"] == 2  # crashed, no model of its own, but its parent has one
    assert [c["number"] for c in compare(4)["choices"]] == [2, 1]


def test_models_are_loaded_once(lab, monkeypatch):
    loads = []
    real = select.load_selected
    monkeypatch.setattr(select, "load_selected", lambda *a: loads.append(a[0].label) or real(*a))
    with TestClient(create_app(lab["workspace"]), base_url="http://127.0.0.1:8765") as c:
        for _ in range(2):
            r = c.get("/api/experiments/2/surprisal", params={"text": "emma", "compare": 1})
            assert r.status_code == 200
        assert len(loads) == 2  # 1 and 2, once each
        assert c.get("/api/experiments/2").json()["has_model"]


def test_token_required(lab):
    app = create_app(lab["workspace"], token="s3cret")
    with TestClient(app, base_url="http://0.0.0.0:8765") as c:
        assert c.get("/api/experiments/2/surprisal", params={"text": "ava"}).status_code == 401
        r = c.post("/api/experiments/2/surprisal?token=s3cret", json={"text": "ava"})
        assert r.status_code == 200 and r.json()["number"] == 2


@pytest.fixture
def served(lab):
    with serving(lab["workspace"], "s3cret") as url:
        yield url


def test_a_slow_model_load_does_not_hold_up_the_rest(served, monkeypatch):
    real = select.load_selected

    def slow(*args):
        time.sleep(2.0)
        return real(*args)

    monkeypatch.setattr(select, "load_selected", slow)
    auth = {"authorization": "Bearer s3cret"}
    done = {}

    def score():
        done["r"] = httpx.get(served + "/api/experiments/1/surprisal",
                              params={"text": "ava"}, headers=auth, timeout=30)  # fmt: skip

    worker = threading.Thread(target=score)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    with httpx.stream("GET", served + "/api/stream", headers=auth, timeout=5) as stream:
        first = next(line for line in stream.iter_lines() if line.startswith("data: "))
    assert '"reset": true' in first and time.monotonic() - started < 1.5
    assert "r" not in done  # still loading meanwhile
    worker.join(30)
    assert done["r"].status_code == 200


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: apt-get install chromium")
def test_panel_in_a_browser(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from test_dashboard_browser import CHROMIUM_ARGS

    shots = Path(os.environ.get("AUTOLAB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 960})
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"{served}/?token=s3cret#/exp/2")
        page.wait_for_selector("#surprisal-card #surprisal-btn")
        assert page.input_value("#surprisal-compare") == "1"  # its parent

        # No text: the start of the dev split, compared with the parent, coloured by the change.
        page.click("#surprisal-btn")
        page.wait_for_selector("#surprisal-tokens .tok", timeout=60_000)
        assert page.input_value("#surprisal-text").endswith("\n")
        runs = page.locator(".sp-run").all_text_contents()
        assert len(runs) == 2 and "#2" in runs[0] and "#1" in runs[1]
        assert all("bpb" in run for run in runs)
        verdict = page.text_content(".sp-verdict")
        assert verdict.startswith("#2 is better by") or verdict.startswith("#2 is worse by")
        colours = page.eval_on_selector_all(
            "#surprisal-tokens .tok", "els => els.map(e => e.style.background)"
        )
        assert sum("63, 185, 111" in c for c in colours) > 5  # green: the bigram did better
        assert sum("242, 85, 90" in c for c in colours) > 5  # red: worse
        assert page.locator("#surprisal-tokens .tok", has_text="⏎").count() > 5
        page.locator("#surprisal-tokens .tok").nth(3).hover()
        assert "bits · #1" in page.text_content("#surprisal-hover")
        assert page.locator(".sp-changes li").count() >= 2
        page.locator("#surprisal-card").screenshot(path=str(shots / "surprisal-compare.png"))

        # One model: coloured by its own loss.
        page.fill("#surprisal-text", NAMES[:120])
        page.select_option("#surprisal-compare", "")
        page.click("#surprisal-btn")
        page.wait_for_selector(".sp-totals:not(:has(.sp-verdict))")
        assert page.locator(".sp-run").count() == 1
        assert page.locator("#surprisal-tokens .tok").count() == 120
        page.locator("#surprisal-tokens .tok").nth(10).hover()
        assert "bits" in page.text_content("#surprisal-hover")
        page.locator("#surprisal-card").screenshot(path=str(shots / "surprisal-single.png"))

        # A character the vocabulary lacks: one line saying which.
        page.fill("#surprisal-text", "Emma7")
        page.click("#surprisal-btn")
        error = page.wait_for_selector(".sp-error")
        assert "not in the vocabulary" in error.text_content()
        page.screenshot(path=str(shots / "surprisal-page.png"), full_page=True)

        # An experiment without a model says so instead of offering the panel.
        page.goto(f"{served}/?token=s3cret#/exp/3")
        page.wait_for_selector("#surprisal-card .note")
        assert "left no model" in page.text_content("#surprisal-card .note")
        browser.close()
    assert not errors, errors
    print(f"screenshots in {shots}")
