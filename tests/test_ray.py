"""`autolab research --ray` against a real local Ray instance the test starts (num_cpus=2).

A real `autolab research` process connects to it by address and runs four experiments (two
baseline runs, two candidates) as Ray tasks; a second into the third's training, the test
SIGKILLs the Ray worker process running it. Skipped without Ray, except under CI=true, where
a missing Ray is a failed install and fails.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from tests_support import race

from autolab.cluster.shards import ShardMismatch, ShardSet, materialize
from autolab.track.ledger import Ledger

try:
    import ray
except ImportError:
    ray = None

BUDGET = "3s"
KILL_AFTER_S = 1.0  # from the node reporting in: the training process is mid-budget by then
needs_ray = pytest.mark.skipif(
    ray is None and os.environ.get("CI") != "true",
    reason="Ray is not installed: pip install 'autolab[ray]'",
)


def autolab(*args, home, python_prelude="", timeout=600, **popen):
    """`python -m autolab ARGS`, optionally after a line of Python (to hide a package)."""
    code = f"{python_prelude}\nimport sys\nfrom autolab.cli import main\nsys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "AUTOLAB_HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen,
    )  # fmt: skip


def finished(process, timeout=600) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


@pytest.fixture(scope="module")
def cluster():
    if ray is None:
        pytest.fail("Ray is not installed, and CI=true: pip install 'autolab[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def workspace(tmp_path):
    home = tmp_path / "home"
    path = tmp_path / "ws"
    code, output = finished(
        autolab("init", str(path), "--recipe", "mlp", "--budget", BUDGET, home=home)
    )
    assert code == 0, output
    return path, home


def wait_for(condition, session, timeout=180, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if session.poll() is not None:
            raise AssertionError(f"the session ended before {what}: {session.stdout.read()}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@needs_ray
def test_four_experiments_on_ray_one_worker_killed(cluster, workspace):
    path, home = workspace
    session = autolab(
        "research", "--no-prune", "-C", str(path), "--plain", "--ray", cluster, "--tag", "ray",
        "--max-experiments", "2", "--baseline-runs", "2", "--greedy", "--confirm", "0", home=home,
        start_new_session=True,
    )  # fmt: skip
    try:
        attempts = path / ".autolab" / "runs" / "3" / "ray.jsonl"
        first = wait_for(
            lambda: attempts.is_file() and attempts.read_text().strip(), session, what="exp 3"
        )
        victim = json.loads(first.splitlines()[0])["pid"]
        time.sleep(KILL_AFTER_S)
        os.kill(victim, signal.SIGKILL)
        code, output = finished(session)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
    assert code == 0, output
    with Ledger.for_workspace(path) as ledger:
        experiments = ledger.experiments()
        assert not ledger.unfinished()
    assert [e.kind for e in experiments] == ["baseline", "baseline", "candidate", "candidate"]
    assert all(e.val_bpb is not None for e in experiments), [
        (e.status, e.reason) for e in experiments
    ]
    for e in experiments:
        assert e.flags["ray"]["node_id"] and e.flags["hardware"]["torch"], e.flags
        assert e.flags["isolation"] in ("sandbox", "process")
    retried = experiments[2].flags["ray"]
    assert [a["status"] for a in retried["attempts"]] == ["interrupted"], retried
    assert retried["attempts"][0]["pid"] == victim and retried["pid"] != victim
    assert "WorkerCrashedError" in retried["attempts"][0]["reason"]
    assert experiments[2].status in ("keep", "discard")
    assert all(not e.flags["ray"]["attempts"] for e in experiments if e.number != 3)
    # the model came back from the node; the sealed split never left this machine
    assert (path / ".autolab" / "runs" / "3" / "run.log").is_file()
    results = (path / "results.tsv").read_text().splitlines()
    assert len(results) == 1 + 4


@needs_ray
def test_two_workers_run_two_tasks_at_once_on_the_cluster(cluster, workspace):
    path, home = workspace
    code, output = finished(autolab(
        "research", "--no-prune", "-C", str(path), "--plain", "--ray", cluster, "--tag", "ray2",
        "--workers", "2", "--max-experiments", "2", "--baseline-runs", "2", "--confirm", "0",
        home=home,
    ))  # fmt: skip
    assert code == 0, output
    with Ledger.for_workspace(path) as ledger:
        experiments = ledger.experiments()
        assert ledger.verify() == [] and not ledger.unfinished()
        spans = {}
        for event in ledger.events():
            if event.kind in ("started", "finished"):
                spans.setdefault(event.number, []).append(event.time)
        metrics = {e.number: ledger.metrics(e.number) for e in experiments}
    assert [e.kind for e in experiments].count("candidate") >= 2
    assert all(e.val_bpb is not None for e in experiments), [(e.status, e.reason)
                                                             for e in experiments]  # fmt: skip
    # Both baseline runs trained on the cluster at the same time, each with its own metrics
    # (the queue the tasks share is sorted per attempt) and its own run directory.
    (a, a_end), (b, b_end) = spans[1], spans[2]
    assert b < a_end and a < b_end
    for e in experiments:
        assert e.flags["ray"]["node_id"] and e.flags["hardware"]["workers"] == 2, e.flags
        assert metrics[e.number] and all(m["progress"] <= 1.0 for m in metrics[e.number])
        steps = [m["step"] for m in metrics[e.number] if "step" in m]
        assert steps == sorted(steps), (e.number, steps)  # no other run's points mixed in
        assert (path / ".autolab" / "runs" / str(e.number) / "run.log").is_file()
    # More at once than the cluster has room for is refused before anything runs.
    code, output = finished(autolab(
        "research", "--no-prune", "-C", str(path), "--plain", "--ray", cluster, "--tag", "ray3",
        "--workers", "3", home=home,
    ))  # fmt: skip
    assert code == 2 and "3 experiments at once" in output and "lower --workers" in output, output
    assert len(output.strip().splitlines()) == 1, output


@needs_ray
def test_unreachable_cluster_is_a_one_line_error(workspace):
    path, home = workspace
    code, output = finished(
        autolab("research", "--no-prune",
                "-C", str(path), "--ray", "127.0.0.1:9", "--max-experiments", "0",
                home=home, python_prelude="import ray\nray.shutdown()")
    )  # fmt: skip
    assert code == 2, output
    assert "cannot connect to the Ray cluster at '127.0.0.1:9'" in output


def test_missing_ray_is_a_one_line_error_naming_the_install(workspace):
    path, home = workspace
    hide_ray = "import sys\nsys.modules['ray'] = None"
    code, output = finished(
        autolab(
            "research",
            "--no-prune",
            "-C",
            str(path),
            "--ray",
            "auto",
            home=home,
            python_prelude=hide_ray,
        )
    )
    assert code == 2, output
    assert output.strip().splitlines()[-1].endswith("pip install 'autolab[ray]'"), output
    assert "Traceback" not in output


def test_shards_are_checked_by_hash_on_the_node(tmp_path):
    public = tmp_path / "data" / "names-char-abc"
    public.mkdir(parents=True)
    (public / "train.bin").write_bytes(b"\x01\x02" * 50)
    (public / "meta.json").write_text('{"vocab_size": 3}')
    shards = ShardSet.of(public)
    assert shards.key == "names-char-abc" and set(shards.hashes) == {"train.bin", "meta.json"}
    fetches = []

    def fetch():
        fetches.append(1)
        return shards.read(public)

    node = tmp_path / "node"
    copy = materialize(shards, fetch, node)
    assert (copy / "train.bin").read_bytes() == (public / "train.bin").read_bytes()
    assert materialize(shards, fetch, node) == copy and len(fetches) == 1  # cached, checked
    (copy / "train.bin").write_bytes(b"tampered")  # e.g. a process-isolated experiment
    copy = materialize(shards, fetch, node)
    assert len(fetches) == 2 and not shards.mismatches(copy)
    with pytest.raises(ShardMismatch, match="train.bin"):
        materialize(ShardSet("other", shards.hashes), lambda: {**shards.read(public),
                    "train.bin": b"corrupted in transit"}, node)  # fmt: skip


def test_two_tasks_on_one_node_share_the_copy_the_first_wrote(tmp_path):
    """Two tasks that start together on a node both find no copy of the shards; the later must
    not move aside the copy the earlier just wrote (its experiment may be reading it)."""
    public = tmp_path / "data" / "names-char-abc"
    public.mkdir(parents=True)
    (public / "train.bin").write_bytes(b"\x01\x02" * 50)
    shards = ShardSet.of(public)
    first_is_fetching = threading.Event()

    def slow_first_fetch():
        if not first_is_fetching.is_set():
            first_is_fetching.set()
            time.sleep(1.0)  # the second task starts meanwhile and finds no copy
        return shards.read(public)

    node = tmp_path / "node"
    seen = {}

    def task(name):
        copy = materialize(shards, slow_first_fetch, node)
        seen[name] = copy.stat().st_ino

    race(task, first_is_fetching)
    copy = materialize(shards, slow_first_fetch, node)
    assert set(seen.values()) == {copy.stat().st_ino} and not shards.mismatches(copy)
