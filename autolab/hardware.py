"""The hardware fingerprint every experiment records: what a score was measured on.

Two scores are comparable when they come from the same fingerprint: the same device model and
driver, the same torch, the same CPU and thread count, the same number of experiments sharing
the machine. It is taken by the process that runs the experiment (on a Ray node, the node), and
stored in the result's flags under "hardware"; ledgers written before it simply lack the key.
"""

import functools
import platform
from pathlib import Path

NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def fingerprint(device: str, workers: int = 1, threads: int = 0) -> dict:
    """This machine as `device` sees it, the torch threads a run was given (`threads`; 0:
    torch's default here) and how many experiments share the machine (`workers`)."""
    machine = _machine(device.startswith("cuda"))
    return {**machine, "threads": threads or machine["threads"], "workers": workers}


@functools.cache
def _machine(cuda: bool) -> dict:
    import torch

    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "driver": _nvidia_driver() if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
    }


def label(hardware: dict | None) -> str:
    """One line for the views: 'cpu · AMD EPYC, 2 threads · torch 2.13.0 · 1 worker'."""
    if not hardware:
        return "not recorded"
    device = hardware.get("device") or "?"
    extras = [f"driver {hardware['driver']}" if hardware.get("driver") else "",
              f"CUDA {hardware['cuda']}" if hardware.get("cuda") else ""]  # fmt: skip
    extras = [e for e in extras if e]
    if extras:
        device += f" ({', '.join(extras)})"
    workers, threads = hardware.get("workers", 1), hardware.get("threads", "?")
    return (
        f"{device} · {hardware.get('cpu') or '?'}, {threads} thread{'s' if threads != 1 else ''}"
        f" · torch {hardware.get('torch') or '?'} · {workers} worker{'s' if workers != 1 else ''}"
    )


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform's answer below
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    """The kernel driver's version: the first number after "Kernel Module" in its /proc file
    ('NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ...', or '... Open Kernel
    Module for x86_64  570.86.15 ...')."""
    try:
        text = NVIDIA_DRIVER_FILE.read_text()
    except OSError:
        return None
    after = text.partition("Kernel Module")[2].split()
    return next((word for word in after if word[:1].isdigit()), None)


def distinct(fingerprints) -> list[dict]:
    """The different fingerprints among `fingerprints` (None: not recorded), in order of first
    appearance: what a view lists, and what tells two experiments apart."""
    seen: list[dict] = []
    for hardware in fingerprints:
        if hardware and hardware not in seen:
            seen.append(hardware)
    return seen
