"""The zygote: `python -P -m autolab.zygote.server`, a process that imports torch once and forks.

A fresh Python process spends one to two seconds importing torch and setting up torch.export
before its first useful line, and every experiment needs two (the training process and the
sealed evaluator): on a 20 s budget that was most of the per-experiment overhead. The zygote
pays it once per session. It imports, traces a tiny program so torch.export's lazy set-up is
done, then forks one child per request; a child starts with all of that already in memory.

It runs only autolab code and never computes with a real tensor: a process that has started
torch's thread pool cannot fork safely (the child's pool is broken), so the only warm-up is
tracing, which runs on fake tensors.

Protocol, one JSON object per line. In on stdin: {"id": N, "kind": "train" | "evaluate",
"job": {...}}; {"kill": P} to kill child P's process group; {"clear": true} (sandboxed only)
to kill every process in the sandbox but the zygote. Out on stdout: {"id": N, "pid": P} once
the child runs, {"pid": P, "returncode": R} when it ends (R negative for a signal, as
subprocess reports it), and {"cleared": true} after a clear. The zygote exits when stdin
closes; its children are their own process groups and are not touched.

Inside the sandbox (`--sandboxed`, autolab.sandbox) the zygote is its PID namespace's only
process besides bubblewrap's init, so `clear` is kill(-1): it reaches every process the
experiment left, including those that called setsid. The zygote also makes itself
non-dumpable there, so the experiment it forks cannot ptrace it or open its pipes via /proc.
"""

import ctypes
import gc
import json
import os
import select
import signal
import sys

from autolab.zygote.child import run_child

REAP_INTERVAL_S = 0.05


def warm_up() -> None:
    import tempfile
    from pathlib import Path

    import torch

    import autolab.evaluation.sealed  # noqa: F401  (what an evaluator child runs)
    import autolab.harness.run  # noqa: F401  (the harness every train.py imports)
    from autolab.harness.handover import export_model, load_model

    # One handover each way, so that what exporting and loading a program import on first use
    # is imported here once, not in every child.
    tiny = torch.nn.Sequential(torch.nn.Embedding(4, 4), torch.nn.Linear(4, 4))
    with tempfile.TemporaryDirectory() as scratch:
        export_model(tiny, context_len=4, vocab_size=4, run_dir=Path(scratch))
        load_model(Path(scratch))[0](torch.zeros((1, 4), dtype=torch.long))
    # CUDA cannot be used again in a child forked after it was initialised in the parent.
    if torch.cuda.is_initialized():
        raise SystemExit("the zygote initialised CUDA while warming up; no child could use it")
    if not children_can_use_cuda():
        raise SystemExit(
            "the zygote asked the CUDA driver for its devices while warming up, so no child it "
            f"forks could use CUDA (torch {torch.__version__}); train with --device cpu"
        )


def children_can_use_cuda() -> bool:
    """Whether a child forked now could initialise CUDA. torch marks every later fork 'bad' once
    the process has asked the CUDA driver anything, even only how many devices there are (as
    torch.export's set-up does through `torch.cuda.is_available()`): such a child fails at its
    first CUDA tensor. One forked probe answers it, in milliseconds."""
    import torch

    if torch.version.cuda is None:  # a CPU build: nothing to poison
        return True
    pid = os.fork()
    if pid == 0:
        os._exit(1 if torch.cuda._is_in_bad_fork() else 0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def report(message: dict) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def reap() -> None:
    """Report every child that has ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        report({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})


def serve(sandboxed: bool = False) -> None:
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], REAP_INTERVAL_S)
        reap()
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:  # the runner is gone or done: no more children
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                handle(json.loads(line), sandboxed)


def handle(request: dict, sandboxed: bool) -> None:
    if "kill" in request:
        kill_group(int(request["kill"]))
    elif "clear" in request:
        if sandboxed:  # outside a PID namespace kill(-1) would reach the user's every process
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass  # nothing was left
        report({"cleared": True})
    else:
        fork_child(request)


def kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def fork_child(request: dict) -> None:
    pid = os.fork()
    if pid == 0:
        run_child(request["kind"], request["job"])  # never returns
    report({"id": request["id"], "pid": pid})


PR_SET_DUMPABLE = 4


def main() -> None:
    # Asked through NVML, torch's device count leaves forks usable; asked through the CUDA
    # driver (its default), it marks every later fork unable to use CUDA. Set before torch loads.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    sandboxed = "--sandboxed" in sys.argv[1:]
    if sandboxed:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    warm_up()
    # Everything imported so far lives as long as the zygote: frozen, it is out of every child's
    # garbage collections, which otherwise walk its ~300,000 objects (and copy the pages they
    # touch) while the child exports or loads a program. In forked children on 2 AMD EPYC
    # cores, exporting a 4-block GPT's two programs took 2.06 s against 2.34 s, and the
    # evaluator's first load 0.48 s against 0.62 s (2026-12-07).
    gc.freeze()
    report({"ready": True})
    serve(sandboxed)
    # Every child has been reported; skip torch's interpreter teardown (~0.5 s the runner would
    # wait for at every close).
    os._exit(0)


if __name__ == "__main__":
    main()
