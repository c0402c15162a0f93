"""The runner's side of the zygote (see autolab.zygote.server): start it, ask it for children.

    with Zygote() as zygote:
        child = zygote.spawn("train", {"script": ..., "cwd": ..., "log": ..., "env": {...}})
        while child.poll() is None: ...

A `ForkedChild` reads like a `subprocess.Popen` for what the runner needs: `pid`, `poll()`,
`returncode`, `wait(timeout)`, `kill()`. The children are the zygote's, not ours, so their exit
statuses come from the zygote's reports, read by a thread into a table.

With a `SandboxLayout` the zygote runs inside the experiment's sandbox (autolab.sandbox): its
children's pids are the sandbox's PID namespace's, so they are killed by asking the zygote,
never by pid from out here.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from autolab.errors import UsageError
from autolab.installed import check_installed
from autolab.processes import process_alive
from autolab.sandbox.layout import SandboxLayout
from autolab.scratch import scratch_dir

SERVER_COMMAND = ("-P", "-m", "autolab.zygote.server")
LOST = -signal.SIGKILL  # the status of a child whose zygote died before reporting it


def base_environment() -> dict[str, str]:
    """The parent's environment without autolab's own variables: what the zygote starts with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLAB_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ZygoteError(UsageError):
    """The zygote could not fork a child: a broken installation, not the experiment's doing."""


class Zygote:
    def __init__(self, sandbox: SandboxLayout | None = None):
        check_installed()  # the code every child will run, as pip installed it
        self.env = base_environment()
        self.sandbox = sandbox
        self.scratch = str(scratch_dir("autolab-zygote-"))
        self._pids: dict[int, int] = {}  # request id -> child pid
        self._returncodes: dict[int, int] = {}  # child pid -> exit status
        self._cleared = 0
        self._changed = threading.Condition()
        self._next_id = 0
        self._closing = False
        self._stderr = open(os.path.join(self.scratch, "zygote.log"), "wb")
        command = [sys.executable, *SERVER_COMMAND]
        if sandbox is not None:
            command = sandbox.command([*command, "--sandboxed"], self.env)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=self.scratch,  # nothing in it can shadow autolab's modules
            env=self.env,
            start_new_session=True,
            preexec_fn=sandbox.limits.apply if sandbox is not None else None,
        )
        self._reader = threading.Thread(target=self._read_reports, daemon=True)
        self._reader.start()

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def usable(self) -> bool:
        """Running, and started with the environment a new one would get now."""
        return self.process.poll() is None and self.env == base_environment()

    @property
    def died(self) -> bool:
        """It ended without being asked to: inside a sandbox, the experiment may have killed it."""
        return not self._closing and self.process.poll() is not None

    def spawn(self, kind: str, job: dict, timeout: float = 120.0) -> "ForkedChild":
        """Fork a child for `job` ("train" or "evaluate"); waits for the zygote's warm-up."""
        with self._changed:
            request_id = self._next_id
            self._next_id += 1
        self._send({"id": request_id, "kind": kind, "job": job})
        deadline = time.monotonic() + timeout
        with self._changed:
            while request_id not in self._pids:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise self._error("it did not start the child")
                self._changed.wait(min(left, 0.5))
            return ForkedChild(self, self._pids.pop(request_id))

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as err:
            raise self._error("it is gone") from err

    def kill_child(self, pid: int) -> None:
        """SIGKILL a child's process group (by asking the zygote when the pid is the
        sandbox's)."""
        if self.sandbox is None:
            for kill in (os.killpg, os.kill):  # not yet its own group: just forked
                try:
                    kill(pid, signal.SIGKILL)
                    return
                except ProcessLookupError:
                    continue
        elif self.process.poll() is None:
            try:
                self._send({"kill": pid})
            except ZygoteError:
                pass  # gone, and its PID namespace with it

    def clear(self, timeout: float = 10.0) -> bool:
        """Kill every process left in the sandbox but the zygote (whatever the experiment
        started, setsid or not); False if the zygote did not confirm in time."""
        if self.sandbox is None or self.process.poll() is not None:
            return self.sandbox is not None  # a dead zygote took its namespace with it
        with self._changed:
            before = self._cleared
        try:
            self._send({"clear": True})
        except ZygoteError:
            return True
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._cleared == before and self.process.poll() is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))
        return True

    def _error(self, what: str) -> ZygoteError:
        self._stderr.flush()
        with open(self._stderr.name, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        said = f": {lines[-1]}" if lines else ""
        return ZygoteError(
            f"autolab's worker process (python -m autolab.zygote.server) failed, {what}{said}; "
            "check that torch imports in this environment"
        )

    def returncode_of(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._returncodes:
                return self._returncodes[pid]
        if self.process.poll() is not None and (self.sandbox or not process_alive(pid)):
            return LOST  # in a sandbox the child died with the zygote's PID namespace
        return None

    def wait_for(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.returncode_of(pid)
            if code is not None:
                return code
            with self._changed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(0.2 if left is None else min(left, 0.2))

    def close(self) -> None:
        """End the zygote (children keep running: the runner ends those itself; in a sandbox
        they end with it)."""
        self._closing = True
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout:
            self.process.stdout.close()
        self._stderr.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.sandbox is not None:
            self.sandbox.close()

    def _read_reports(self) -> None:
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._changed:
                if "returncode" in message:
                    self._returncodes[message["pid"]] = message["returncode"]
                elif "cleared" in message:
                    self._cleared += 1
                elif "id" in message:
                    self._pids[message["id"]] = message["pid"]
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


class ForkedChild:
    def __init__(self, zygote: Zygote, pid: int):
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.returncode_of(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.zygote.wait_for(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
        return self.returncode

    def kill(self) -> None:
        """Kill the child's whole process group and wait for it to be reported."""
        if self.poll() is None:
            self.zygote.kill_child(self.pid)
            self.wait()


def ask_child(
    zygote: Zygote,
    kind: str,
    job: dict,
    scratch_prefix: str,
    timeout: float,
    started=lambda child: None,
) -> tuple[list[str], int]:
    """Fork a `kind` child for `job` in an empty scratch folder of its own and wait for it: the
    lines it wrote to its log (its answer is the last one) and its exit status. The folder goes
    when it ends. Past `timeout` the child is killed and subprocess.TimeoutExpired raised.
    `started(child)` gets the child as soon as it runs, for a caller that may have to end it
    first (a session being stopped)."""
    scratch = scratch_dir(scratch_prefix)
    log = scratch / f"{kind}.log"
    try:
        child = zygote.spawn(kind, {**job, "scratch": str(scratch), "log": str(log)})
        started(child)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return lines, child.returncode
