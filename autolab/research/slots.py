"""How experiments share one machine: a slot per experiment in flight, each pinned.

On CUDA a slot owns one GPU (the run sees it through CUDA_VISIBLE_DEVICES); on a CPU it owns
its share of the cores, cores // workers torch threads (at least 1), so N runs at once never ask
for more threads than the machine has (a session of one worker keeps torch's own count). The
thread count reaches the run through its settings (RunSettings.threads, applied by the
harness), never through a recipe constant.
"""

import os
from dataclasses import dataclass

from autolab.errors import UsageError


@dataclass(frozen=True)
class Slot:
    index: int
    threads: int  # torch threads each run in this slot gets; 0: torch's own count
    gpu: int | None = None  # the GPU it is pinned to (CUDA sessions)


def usable_cores() -> int:
    """The cores this process may run on (its affinity), not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def parse_gpus(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--gpus takes GPU numbers separated by commas, e.g. 0,2,3; got {text!r}"
        ) from None
    if not gpus or any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise UsageError(f"--gpus takes distinct GPU numbers, e.g. 0,2,3; got {text!r}")
    return gpus


def plan_slots(workers: int | None, gpus: list[int] | None, device: str,
               threads: int | None = None, cores: int | None = None,
               gpu_count: int | None = None) -> list[Slot]:  # fmt: skip
    """The slots of a session: `workers` of them (default: one per --gpus GPU, else 1).
    `threads` overrides the CPU share, but never past the cores; `gpu_count` is how many GPUs
    torch sees (asked only for CUDA sessions)."""
    cores = cores or usable_cores()
    cuda = device.startswith("cuda")
    if gpus is not None and not cuda:
        raise UsageError("--gpus needs a CUDA device (--device cuda), and torch sees none here: "
                         "drop --gpus, or run on a machine with GPUs")  # fmt: skip
    if workers is None:
        workers = len(gpus) if gpus else 1
    if workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if cuda:
        if gpus is None:
            gpus = list(range(workers)) if workers > 1 else [None]
        if len(gpus) != workers:
            raise UsageError(f"--workers {workers} with --gpus {','.join(map(str, gpus))}: "
                             "one GPU per worker; give as many GPUs as workers")  # fmt: skip
        if gpu_count is not None and any(g is not None and g >= gpu_count for g in gpus):
            raise UsageError(f"torch sees {gpu_count} GPU(s) (0..{gpu_count - 1}): choose "
                             "--gpus among them, or fewer --workers")  # fmt: skip
    else:
        gpus = [None] * workers
        if workers > cores:
            raise UsageError(f"--workers {workers} on {cores} cores would oversubscribe them: "
                             f"use at most {cores} workers")  # fmt: skip
    # Alone, a run keeps torch's own count (as `autolab train` does, so their fingerprints
    # match); shared, each gets its part of the cores.
    share = max(1, cores // workers) if workers > 1 else 0
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be at least 1 (got {threads})")
        if threads * workers > cores:
            raise UsageError(f"--threads {threads} x --workers {workers} is more than the "
                             f"{cores} cores: use --threads {cores // workers} or "
                             "fewer")  # fmt: skip
        share = threads
    return [Slot(i, share, gpu) for i, gpu in enumerate(gpus)]
