"""Per-experiment resource limits, set on the sandbox's first process and inherited by all.

They keep one experiment from taking the machine from the referee: memory (address space, on
CPU only: CUDA maps far more address space than it uses), processes, the size of any one file
it writes and its open files. Everything else an experiment does is bounded by the wall clock
the runner enforces.

RLIMIT_NPROC counts processes per user: it does nothing for a runner that is root (the kernel
exempts root) and counts a normal user's other processes too, so it is set high; the PID
namespace is what guarantees the whole process tree dies with the run.
"""

import os
import resource
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class ResourceLimits:
    memory_bytes: int | None  # address space per process; None: unlimited (CUDA)
    max_processes: int = 4096
    max_file_bytes: int = 32 * GIB
    max_open_files: int = 4096

    @classmethod
    def default(cls, device: str = "cpu") -> "ResourceLimits":
        if device.startswith("cuda"):
            return cls(memory_bytes=None)
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return cls(memory_bytes=int(physical * 0.75))

    def apply(self) -> None:
        """Set the limits on this process (call in the child, before exec)."""
        for name, value in (
            (resource.RLIMIT_AS, self.memory_bytes),
            (resource.RLIMIT_NPROC, self.max_processes),
            (resource.RLIMIT_FSIZE, self.max_file_bytes),
            (resource.RLIMIT_NOFILE, self.max_open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            if value is None:
                continue
            _, hard = resource.getrlimit(name)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(name, (value, value))
