"""How much CPU other processes took while a benchmark's run went on: a figure taken on a busy
machine is not the machine's.

The run's own processes cannot be counted by what reaches its parent: in the sandbox they live
in their own PID namespace and are reaped there, so `RUSAGE_CHILDREN` never sees them. Instead
/proc is sampled while the run goes: every process descended from the run (its tree, which the
host's /proc shows whatever namespace it is in) is the run's, once seen so always; every other
process's CPU time is counted from its first sighting to its last. A process that lived and died
between two samples is missed, so the figure is a floor.
"""

import os
import threading
from pathlib import Path

SAMPLE_SECONDS = 0.25


def read_processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) of every process /proc shows now."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone since the listing
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the
        # last ")" are fixed: ppid is the 2nd, utime and stime the 12th and 13th.
        fields = stat[stat.rindex(")") + 2 :].split()
        processes[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return processes


class OtherLoad:
    """CPU seconds spent, while the run with `root` pid went on, by processes outside its tree
    and other than this one: start(), then stop() for the figure."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS):
        self.ours = {root, os.getpid()}
        self.interval = interval
        self.first: dict[int, float] = {}  # others' CPU seconds when first seen
        self.last: dict[int, float] = {}  # and when last seen
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_done, daemon=True)

    def start(self) -> "OtherLoad":
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        self.sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    def sample(self) -> None:
        processes = read_processes()
        for pid in sorted(processes):  # parents before most of their children
            if pid not in self.ours and self._descends(pid, processes):
                self.ours.add(pid)
        for pid, (_, seconds) in processes.items():
            if pid in self.ours:
                self.first.pop(pid, None)
                self.last.pop(pid, None)
                continue
            self.first.setdefault(pid, seconds)
            self.last[pid] = seconds

    def _descends(self, pid: int, processes: dict) -> bool:
        seen = set()
        while pid in processes and pid not in seen:
            seen.add(pid)
            pid = processes[pid][0]
            if pid in self.ours:
                return True
        return False

    def _sample_until_done(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()
