"""bench/other_load.py: the CPU other processes took during a run, the run's own tree left out
whatever it spawns (the sandbox's processes are its grandchildren and beyond)."""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from other_load import OtherLoad, read_processes  # noqa: E402

# A process that burns `seconds` of CPU, then exits.
BURN = (
    "import sys, time\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end: pass"
)


def run_burning_in_a_grandchild(seconds: float) -> subprocess.Popen:
    """A run whose CPU is spent two levels down, as a sandboxed training process's is; it
    prints the grandchild's pid first."""
    inner = [sys.executable, "-c", BURN, str(seconds)]
    code = f"import subprocess; p = subprocess.Popen({inner!r}); print(p.pid, flush=True); p.wait()"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_the_runs_own_tree_is_not_other_load():
    run = run_burning_in_a_grandchild(1.5)
    load = OtherLoad(run.pid).start()
    grandchild = int(run.stdout.readline())
    run.wait()
    load.stop()
    # Seen while it burned, and counted as the run's, not as another process's load.
    assert grandchild in load.ours and grandchild not in load.last


def test_a_process_outside_the_run_is_counted():
    # Started by a shell that exits at once: it is re-parented away, no descendant of this test.
    subprocess.run(["sh", "-c", f"{sys.executable} -c '{BURN}' 3 >/dev/null 2>&1 &"], check=True)
    time.sleep(0.3)
    other = [pid for pid in read_processes()
             if BURN.splitlines()[0] in _cmdline(pid)]  # fmt: skip
    assert other, "the outside process did not start"
    run = run_burning_in_a_grandchild(1.5)
    load = OtherLoad(run.pid).start()
    run.wait()
    others = load.stop()
    # Two cores: the outside process burned beside the run for most of its ~1.5 s.
    assert set(other) <= set(load.last) and others > 0.5, others


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
