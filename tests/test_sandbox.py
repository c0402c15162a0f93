"""The experiment's sandbox on its own: what a script inside sees, keeps and leaves behind.

Real bubblewrap, a real zygote, real processes. (tests/test_red_team.py runs hostile train.py
files through the whole research loop.)
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autolab import sandbox
from autolab.errors import UsageError
from autolab.sandbox.availability import choose_isolation
from autolab.sandbox.layout import SandboxLayout
from autolab.scratch import OWNER_FILE, sweep_abandoned
from autolab.zygote.client import Zygote

needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_unavailable() is not None and os.environ.get("CI") != "true",
    reason="no sandbox here",
)

LOOK = """
import json, os, socket
seen = {"uid": os.getuid(), "data": sorted(os.listdir("/autolab/data"))}
for path in SECRETS:
    seen[path] = os.path.exists(path)
for path in ("/autolab/run/out", "/tmp/out", "/autolab/home/out", "/dev/shm/out", "/out",
             "/autolab/src/out", "/usr/out", "/autolab/data/out"):
    try:
        open(path, "w").write("x")
        seen[path] = "written"
    except OSError:
        seen[path] = "read-only"
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=1)
    seen["network"] = "reached"
except OSError as err:
    seen["network"] = err.strerror
seen["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
open("/autolab/run/seen.json", "w").write(json.dumps(seen))
"""


def run_in_sandbox(tmp_path: Path, script: str, hidden=()) -> tuple[SandboxLayout, Zygote]:
    data = tmp_path / "home" / "data" / "x"
    data.mkdir(parents=True)
    (data / "train.bin").write_bytes(b"\0\0")
    layout = SandboxLayout(data, hidden=list(hidden))
    zygote = Zygote(layout)
    source = tmp_path / "script.py"
    source.write_text(script)
    job = {
        "script": str(layout.stage_script(source)),
        "cwd": "/autolab/run",
        "log": "/autolab/run/run.log",
        "env": {"PATH": "/usr/bin:/bin"},
    }
    child = zygote.spawn("train", job)
    child.wait(120)
    return layout, zygote


@needs_sandbox
def test_a_script_sees_its_data_and_staging_only(tmp_path):
    secrets = [tmp_path / "home" / "sealed", tmp_path / "ws" / ".autolab", Path.home() / ".cache"]
    for path in secrets[:2]:
        path.mkdir(parents=True)
    listener = socket.create_server(("127.0.0.1", 0))  # on the host: it must not be reached
    port = listener.getsockname()[1]
    script = f"SECRETS = {[str(p) for p in secrets]!r}\nPORT = {port}\n" + LOOK
    layout, zygote = run_in_sandbox(tmp_path, script)
    listener.close()
    try:
        log = (layout.run_dir / "run.log").read_text()
        seen = json.loads((layout.run_dir / "seen.json").read_text())
    finally:
        zygote.close()
    assert seen["uid"] == 65534, log
    assert seen["data"] == ["train.bin"]
    assert not any(seen[str(p)] for p in secrets)
    writable = {"/autolab/run/out", "/tmp/out", "/autolab/home/out", "/dev/shm/out"}
    for path, outcome in seen.items():
        if path.endswith("/out"):
            assert outcome == ("written" if path in writable else "read-only"), path
    assert seen["network"] in ("Connection refused", "Network is unreachable")  # its own lo
    assert len(seen["processes"]) <= 4  # bubblewrap's init, the zygote, this one (and a reaper)


@needs_sandbox
def test_reset_leaves_nothing_for_the_next_experiment(tmp_path):
    script = textwrap.dedent("""
        for path in ("/autolab/run/w.pt", "/tmp/w.pt", "/autolab/home/w.pt", "/dev/shm/w.pt"):
            open(path, "w").write("weights")
    """)
    layout, zygote = run_in_sandbox(tmp_path, script)
    try:
        assert (layout.staging / "tmp" / "w.pt").exists()
        layout.reset()
        left = [p for p in layout.staging.rglob("*") if p.is_file()]
        assert left == [layout.staging / OWNER_FILE]  # autolab's own: which process made it
    finally:
        zygote.close()


@needs_sandbox
def test_clear_kills_what_the_run_left_even_in_its_own_session(tmp_path):
    script = textwrap.dedent("""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)
        open("/autolab/run/started", "w").write("")
    """)
    layout, zygote = run_in_sandbox(tmp_path, script)
    try:
        assert (layout.run_dir / "started").exists()
        assert zygote.clear()
        time.sleep(0.5)
        check = subprocess.run(["pgrep", "-f", "time.sleep\\(60\\)"], capture_output=True)
        assert check.stdout.strip() == b""
    finally:
        zygote.close()


KILLED_RUNNER = """
import sys, time
from pathlib import Path
from autolab.sandbox.layout import SandboxLayout
from autolab.zygote.client import Zygote
data, marker = Path(sys.argv[1]), sys.argv[2]
layout = SandboxLayout(data)
zygote = Zygote(layout)
script = Path(sys.argv[3])
job = {"script": str(layout.stage_script(script)), "cwd": "/autolab/run",
       "log": "/autolab/run/run.log", "env": {"PATH": "/usr/bin:/bin"}}
zygote.spawn("train", job)
print(layout.staging, flush=True)
time.sleep(60)
"""


@needs_sandbox
def test_the_sandbox_dies_with_a_runner_killed_by_sigkill(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    script = tmp_path / "train.py"
    script.write_text(
        "import time\ntime.sleep(4)\nopen('/autolab/run/outlived-the-runner', 'w').write('x')\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUNNER, str(data), "marker", str(script)],
        stdout=subprocess.PIPE,
        text=True,
    )
    staging = Path(runner.stdout.readline().strip())
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    time.sleep(5)
    assert not (staging / "run" / "outlived-the-runner").exists()
    assert staging in sweep_abandoned(staging.parent)  # the next runner's first scratch folder
    assert not staging.exists()


def test_asking_for_the_sandbox_where_there_is_none_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    sandbox.sandbox_unavailable.cache_clear()
    try:
        with pytest.raises(UsageError, match="--isolation sandbox is not available: bubblewrap"):
            choose_isolation("sandbox", print)
        warned = []
        assert choose_isolation(None, warned.append) == "process"
        assert "no sandbox" in warned[0] and "\n" not in warned[0]
        assert choose_isolation("process", warned.append) == "process"
    finally:
        monkeypatch.undo()
        sandbox.sandbox_unavailable.cache_clear()
