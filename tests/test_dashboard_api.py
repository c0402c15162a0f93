"""The dashboard's JSON API against a real ledger and git workspace filled in tmp."""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402
from tests_support import branch_of_scores  # noqa: E402

from autolab import gitrepo  # noqa: E402
from autolab.commands import dashboard as dashboard_command  # noqa: E402
from autolab.dashboard.api import Dashboard, Follower  # noqa: E402
from autolab.dashboard.app import create_app, make_server, resolve_token  # noqa: E402
from autolab.errors import UsageError  # noqa: E402
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord  # noqa: E402
from autolab.workspace import STOP_FILE, init_workspace, load_workspace  # noqa: E402


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


@pytest.fixture
def workspace(tmp_path):
    """A workspace with one session: a baseline, a discard, a crash, a keep and a running one."""
    root = init_workspace(tmp_path / "ws", recipe="mlp")
    ws = load_workspace(root)
    base = gitrepo.head(root)
    source = ws.train_py.read_text()
    ws.train_py.write_text(source.replace("N_HIDDEN = ", "N_HIDDEN = 2 * "))
    changed = gitrepo.commit_all(root, "wider")
    with Ledger.for_workspace(root) as ledger:
        sid = ledger.start_session("t", "autolab/t", "search", 2.0, "cpu",
                                   {"base_commit": base, "pid": os.getpid()})  # fmt: skip
        ledger.add_event("session_started", "session 1", sid, data={"pid": os.getpid()})
        rows = [
            (1, "baseline", "", base, "baseline (seed 0)", ResultRecord("keep", "baseline", 4.0)),
            (2, "candidate", base, changed, "wider", ResultRecord("discard", "worse", 4.1)),
            (3, "candidate", base, changed, "boom", ResultRecord("crash", "exit code 1")),
            (4, "candidate", base, changed, "better", ResultRecord("keep", "better", 3.5, 3.6)),
            (5, "candidate", base, changed, "now", None),
        ]
        for number, kind, parent, commit, text, result in rows:
            ledger.add_experiment(ExperimentRecord(number, sid, kind, commit, text, parent,
                                                   "search", seed=0))  # fmt: skip
            if result:
                ledger.add_result(number, result)
        ledger.record_noise(sid, 4.0, 0.01, 1)
        ledger.add_event("alert", "new best 3.5", sid, 4, {"alert": "new_best"})
        ledger.add_metrics(4, [{"step": 1, "loss": 3.0}, {"step": 2, "loss": float("nan")}])
        ledger.add_metrics(5, [{"step": 1, "loss": 3.3, "progress": 0.1}])
    run_dir = ws.runs_dir / "4"
    run_dir.mkdir(parents=True)
    (run_dir / "run.log").write_text("".join(f"line {i}\n" for i in range(500)))
    return ws


@pytest.fixture
def client(workspace):
    with TestClient(create_app(workspace), base_url="http://127.0.0.1:8765") as c:
        yield c


def test_overview(client):
    o = client.get("/api/overview").json()
    assert o["session"]["state"] == "running"
    assert o["best"]["number"] == 4 and o["best"]["score"] == 3.5
    assert o["reference"]["bpb"] == 4.0 and o["delta"] == pytest.approx(-0.5)
    assert o["counts"] == {"total": 5, "kept": 1, "discarded": 1, "crashed": 1, "timed_out": 0,
                           "invalid": 0, "interrupted": 0, "pruned": 0, "running": 1, "rechecks": 0,
                           "baseline_runs": 1, "confirm_runs": 0, "failed": 1}  # fmt: skip
    assert o["failed_statuses"] == ["crash", "timeout", "invalid"]  # the page reads them here
    assert o["running"]["number"] == 5 and o["running"]["loss"] == 3.3
    assert [a["message"] for a in o["alerts"]] == ["new best 3.5"]


def test_experiments_rows(client):
    rows = {r["number"]: r for r in client.get("/api/experiments").json()}
    assert [rows[n]["shown_status"] for n in range(1, 6)] == [
        "keep", "discard", "crash", "keep", "running"
    ]  # fmt: skip
    assert rows[1]["delta"] == 0.0  # the one baseline run is the reference
    assert rows[2]["delta"] == pytest.approx(0.1)
    assert rows[2]["delta_best_before"] == rows[2]["delta"]
    assert rows[4]["delta"] == pytest.approx(-0.5) and rows[4]["is_best"]
    assert rows[5]["delta"] is None and rows[5]["best_before"] == 3.5
    assert rows[3]["val_bpb"] is None and rows[3]["reason"] == "exit code 1"


def test_experiment_detail(client):
    d = client.get("/api/experiments/4").json()
    assert d["reported_val_bpb"] == 3.6 and d["reason"] == "better"
    assert "-N_HIDDEN = 128" in d["diff"]["text"] and "+N_HIDDEN = 2 * 128" in d["diff"]["text"]
    log = d["log"].splitlines()
    assert len(log) == 200 and log[-1] == "line 499"
    assert client.get("/api/experiments/1").json()["diff"]["note"].startswith("a baseline run")
    assert client.get("/api/experiments/99").status_code == 404


def test_metrics_nan_is_null(client):
    rows = client.get("/api/experiments/4/metrics").json()
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 3.0), (2, None)]


def test_samples_without_model(client):
    d = client.get("/api/experiments/3/samples").json()
    assert d["samples"] == [] and "left no model (crash: exit code 1)" in d["message"]


def test_stop_creates_the_stop_file(client, workspace):
    assert client.post("/api/stop").json()["stop_requested"] == "after"
    assert (workspace.state_dir / STOP_FILE).read_text().startswith("after\n")
    assert client.get("/api/overview").json()["session"]["state"] == "stopping"
    assert client.post("/api/stop?now=1").json()["stop_requested"] == "now"
    assert client.post("/api/stop").json()["stop_requested"] == "now"  # never back to "after"


def test_refuses_foreign_hosts_and_origins(client, workspace):
    assert client.get("/api/overview", headers={"host": "evil.example"}).status_code == 403
    r = client.post("/api/stop", headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and not (workspace.state_dir / STOP_FILE).exists()
    assert client.post("/api/stop", headers={"origin": "http://127.0.0.1:8765"}).status_code == 200


def test_killed_session_and_its_running_experiment(workspace):
    with Ledger.for_workspace(workspace.root) as ledger:
        ledger.add_event("session_started", "resumed", 1, data={"pid": dead_pid()})
    dash = Dashboard(workspace)
    assert dash.overview()["session"]["state"] == "killed"
    assert dash.overview()["running"] is None
    assert dash.experiments()[-1]["shown_status"] == "interrupted"
    dash.close()


def test_page_and_plotly_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "{{" not in page.text
    assert client.get("/static/app.js").status_code == 200
    plotly = client.get("/static/vendor/plotly.min.js")
    assert plotly.status_code == 200 and "plotly" in plotly.text[:500].lower()


def test_follower_sends_what_lands(workspace):
    dash = Dashboard(workspace)
    follower = Follower(dash)
    first = follower.tick()
    assert first["reset"] and first["metrics"][5] == {"start": 0, "rows": [
        {"step": 1, "progress": 0.1, "loss": 3.3, "lr": None, "tokens_per_sec": None,
         "memory_mb": None, "training_seconds": None, "time": None, "tokens": None,
         "dev_loss": None}]}  # fmt: skip
    assert follower.tick() is None  # nothing new
    with Ledger.for_workspace(workspace.root) as ledger:
        ledger.add_metrics(5, [{"step": 2, "loss": 3.1}])
        update = follower.tick()
        assert update["metrics"][5]["start"] == 1
        assert [r["step"] for r in update["metrics"][5]["rows"]] == [2]
        # The last rows land just before the result: they still reach the page.
        ledger.add_metrics(5, [{"step": 3, "loss": 3.0}])
        ledger.add_result(5, ResultRecord("discard", "no gain", 3.9))
        ledger.add_event("verdict", "exp 5 discard", 1, 5)
        update = follower.tick()
    assert [r["step"] for r in update["metrics"][5]["rows"]] == [3]
    assert [e["kind"] for e in update["events"]] == ["verdict"]
    assert update["experiments"][-1]["status"] == "discard"
    dash.close()


def test_empty_dashboard_until_the_ledger_appears(tmp_path):
    ws = load_workspace(init_workspace(tmp_path / "fresh", recipe="mlp"))
    with TestClient(create_app(ws), base_url="http://localhost") as c:
        assert c.get("/api/overview").json()["ledger"] is False
        assert c.get("/api/experiments").json() == []
        assert not (ws.state_dir / "ledger.db").exists()  # reading never creates it
        Ledger.for_workspace(ws.root).close()
        assert c.get("/api/overview").json()["ledger"] is True


def test_token_generated_for_other_hosts():
    assert resolve_token("127.0.0.1", None) is None
    assert resolve_token("localhost", None) is None
    assert len(resolve_token("0.0.0.0", None)) >= 20
    assert resolve_token("127.0.0.1", "given") == "given"


@contextmanager
def serving(workspace, token: str):
    """The real server (uvicorn in a thread) with `token`, on a free port: its base URL."""
    server, sock = make_server(workspace, "127.0.0.1", 0, token)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(workspace):
    with serving(workspace, "s3cret") as url:
        yield url


@pytest.mark.parametrize(
    "path", ["/", "/api/overview", "/api/experiments/4", "/static/app.js",
             "/static/vendor/plotly.min.js", "/api/stream"],
)  # fmt: skip
def test_token_on_every_request(served, path):
    assert httpx.get(served + path, timeout=5).status_code == 401
    assert httpx.get(served + path, params={"token": "wrong"}, timeout=5).status_code == 401
    for kwargs in (
        {"params": {"token": "s3cret"}},
        {"headers": {"authorization": "Bearer s3cret"}},
    ):
        with httpx.stream("GET", served + path, timeout=5, **kwargs) as r:
            assert r.status_code == 200
            if path == "/api/stream":
                lines = r.iter_lines()
                data = next(line for line in lines if line.startswith("data: "))
                assert json.loads(data[6:])["reset"] is True


def test_stop_over_http_with_token(served, workspace):
    assert httpx.post(served + "/api/stop", timeout=5).status_code == 401
    assert not (workspace.state_dir / STOP_FILE).exists()
    r = httpx.post(served + "/api/stop", headers={"authorization": "Bearer s3cret"}, timeout=5)
    assert r.status_code == 200 and (workspace.state_dir / STOP_FILE).exists()


def test_port_in_use(workspace):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    args = argparse.Namespace(host="127.0.0.1", port=port, token=None,
                              workspace=str(workspace.root))  # fmt: skip
    with pytest.raises(UsageError, match=f"port {port} is in use: pass --port N"):
        dashboard_command.run(args)
    taken.close()


def test_not_a_workspace(tmp_path):
    args = argparse.Namespace(host="127.0.0.1", port=0, token=None, workspace=str(tmp_path))
    with pytest.raises(UsageError, match="not an autolab workspace"):
        dashboard_command.run(args)


def test_static_files_are_our_own():
    static = Path(dashboard_command.__file__).parents[1] / "dashboard" / "static"
    assert sorted(p.name for p in static.iterdir()) == [
        "app.js",
        "index.html",
        "panels.js",
        "style.css",
    ]


# --- panels: params table, what mattered ---------------------------------------------------------


def test_params_table_marks_what_differs_from_the_parent(client):
    d = client.get("/api/experiments/4").json()
    rows = {r["name"]: r for r in d["params_table"]}
    assert rows["N_HIDDEN"] == {"name": "N_HIDDEN", "value": "2 * 128", "kind": "derived",
                                "comment": "tanh hidden units", "parent": "128",
                                "changed": True}  # fmt: skip
    assert rows["LEARNING_RATE"]["value"] == rows["LEARNING_RATE"]["parent"] == "0.005"
    assert [r["name"] for r in d["params_table"] if r["changed"]] == ["N_HIDDEN"]
    assert d["parent_number"] == 1  # the baseline run made the parent commit
    base = client.get("/api/experiments/1").json()
    assert base["parent_number"] is None and not any(r["changed"] for r in base["params_table"])
    assert {r["parent"] for r in base["params_table"]} == {None}


def test_what_mattered_says_how_many_more_experiments_it_needs(tmp_path):
    root = init_workspace(tmp_path / "ws", recipe="mlp")
    branch_of_scores(root, [(0.01, 128, 2.9), (0.02, 64, 2.95)])
    dash = Dashboard(load_workspace(root))
    m = dash.mattered()
    assert [c["name"] for c in m["constants"]] == ["N_HIDDEN", "LEARNING_RATE"]
    assert m["importance"] is None and m["needed"] == 2
    assert m["note"] == "2 more scored experiments before an importance estimate"
    assert [(t["number"], t["score"], t["params"]) for t in m["trials"]] == [
        (1, 3.0, {"N_HIDDEN": 128, "LEARNING_RATE": 0.005}),
        (2, 2.9, {"N_HIDDEN": 128, "LEARNING_RATE": 0.01}),
        (3, 2.95, {"N_HIDDEN": 64, "LEARNING_RATE": 0.02}),
    ]  # fmt: skip
    dash.close()


def test_what_mattered_ranks_the_constant_the_score_follows(tmp_path):
    root = init_workspace(tmp_path / "ws", recipe="mlp")
    # The score follows the learning rate; the hidden width is noise around it.
    lrs = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512]
    hidden = [64, 256, 128, 64, 256, 128, 256, 64, 128, 64]
    pairs = zip(lrs, hidden, strict=True)
    scores = [(lr, h, 2.0 + abs(math.log2(lr / 0.016)) / 10) for lr, h in pairs]
    branch_of_scores(root, scores)
    with TestClient(create_app(load_workspace(root)), base_url="http://127.0.0.1:8765") as c:
        m = c.get("/api/mattered").json()
    assert m["needed"] == 0 and len(m["trials"]) == 11
    lr = next(x for x in m["constants"] if x["name"] == "LEARNING_RATE")
    assert lr["numeric"] and lr["log"] and lr["values"][0] == 0.001
    ranked = [x["name"] for x in m["importance"]]
    assert ranked[0] == "LEARNING_RATE", m["importance"]
    assert sum(x["importance"] for x in m["importance"]) == pytest.approx(1.0)
    assert m["note"] == "over 11 scored experiments"


def test_metrics_carry_tokens_and_dev_loss(client, workspace):
    with Ledger.for_workspace(workspace.root) as ledger:
        ledger.add_metrics(2, [{"step": 5, "loss": 3.1, "tokens": 640, "dev_loss": 3.2}])
    assert client.get("/api/experiments/2/metrics").json()[0] | {"time": None} == {
        "step": 5, "progress": None, "loss": 3.1, "lr": None, "tokens_per_sec": None,
        "memory_mb": None, "training_seconds": None, "time": None, "tokens": 640,
        "dev_loss": 3.2}  # fmt: skip
