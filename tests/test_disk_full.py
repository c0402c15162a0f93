"""A disk that fills up during `autolab research`: a one-line error, nothing recorded lost, and
`--resume` goes on once there is space again.

The workspace lives on a real, small tmpfs, filled with a real file while the session runs.
Mounting needs root (CI and this machine are root in a VM); elsewhere the test skips.
"""

import os
import subprocess
import time
import uuid

import pytest
from test_research import (  # the same real CLI runs
    assert_ledger_and_branch_agree,
    autolab,
    ledger_of,
    start_research,
    wait_for,
)

DISK_SIZE = "24m"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", f"autolab-{uuid.uuid4().hex[:8]}",
         str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk) -> None:
    """Write a file until the disk refuses (ENOSPC)."""
    block = b"\0" * 2**16
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError:
            pass


def finished(workspace) -> list:
    if not (workspace / ".autolab" / "ledger.db").exists():
        return []
    with ledger_of(workspace) as ledger:
        return [v for v in ledger.experiments() if v.status not in ("running",)]


def test_a_full_disk_ends_the_session_with_one_line_and_resume_goes_on(small_disk, home):
    workspace = small_disk / "ws"
    done = autolab("init", str(workspace), "--recipe", "mlp", "--budget", "1.5s", home=home)
    assert done.returncode == 0, done.stderr
    process = start_research(workspace, home, "--tag", "d", "--baseline-runs", "1")
    try:
        wait_for(lambda: len(finished(workspace)) >= 2, what="two finished experiments")
        fill(small_disk)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    last_line = output.strip().splitlines()[-1]
    assert process.returncode == 2, output[-2000:]
    assert "the disk is full" in last_line and "--resume" in last_line
    assert "Traceback" not in output

    (small_disk / "filler").unlink()
    recorded = {v.number: v.status for v in finished(workspace)}
    assert len(recorded) >= 2
    time.sleep(0.5)
    done = autolab(
        "research", "--no-prune", "-C", str(workspace), "--plain", "--resume", "--tag", "d",
        "--max-experiments", "3", "--confirm", "0", home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    after = {v.number: v.status for v in finished(workspace)}
    # Every experiment finished before the disk filled keeps its row and its status.
    assert {n: after[n] for n in recorded} == recorded
    assert len(after) > len(recorded), (done.stdout[-3000:], after)
    assert_ledger_and_branch_agree(workspace, "d")
