"""What an experiment sees inside the sandbox, as one bubblewrap command line.

The view is built from a list of what to show, never by hiding things from a full view:

    /usr /etc (and /bin, /lib... as the host has them)   read-only: the system
    the Python prefixes and site-packages, autolab        read-only: the interpreter and torch
    /autolab/data                                         read-only: the dataset's public shards
    /autolab/src/train.py                                 read-only: the script being run
    /autolab/run  /autolab/home  /tmp  /dev/shm           writable: the staging directory
    /proc /dev                                            its own (PID namespace, minimal /dev)

Packaged text sources (the names and Shakespeare packages) live inside site-packages; they are
covered with empty directories, as is any referee path that falls under a shown one, so the
experiment cannot rebuild the validation split from the raw text. Everything it writes lands
in the staging directory, which the runner empties before each experiment (no state carries
over from one experiment to the next) and copies plain files out of afterwards.
"""

import glob
import importlib.machinery
import os
import shutil
import site
import stat
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import autolab
from autolab.data.sources import PACKAGED_SOURCES
from autolab.sandbox.limits import ResourceLimits
from autolab.scratch import scratch_dir

INNER_ROOT = Path("/autolab")
INNER_DATA = INNER_ROOT / "data"
INNER_RUN = INNER_ROOT / "run"
INNER_SRC = INNER_ROOT / "src"
INNER_HOME = INNER_ROOT / "home"
SANDBOX_UID = 65534  # "nobody" inside the user namespace: not the runner's user id
# The user name inside ($USER): torch names cache directories after it (/tmp/torchinductor_<user>),
# so it is one fixed name whatever the system's user database says of SANDBOX_UID.
SANDBOX_USER = "autolab"
STAGING_DIRS = {"run": INNER_RUN, "home": INNER_HOME, "tmp": Path("/tmp"), "shm": Path("/dev/shm")}
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
# Variables an experiment may inherit: locale, thread counts, CUDA and torch settings. API keys,
# tokens and autolab's own settings stay with the runner.
PASSED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH")
PASSED_ENV_PREFIXES = (
    "LC_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "CUDA_", "NVIDIA_", "NCCL_", "TORCH", "PYTORCH_",
    "TRITON_",
)  # fmt: skip


@dataclass
class SandboxLayout:
    """One sandbox's view and its staging directory (one per zygote, emptied per experiment)."""

    data_dir: Path
    device: str = "cpu"
    hidden: list[Path] = field(default_factory=list)  # referee paths that must never show
    limits: ResourceLimits | None = None  # None: ResourceLimits.default(device)
    staging: Path = field(default_factory=lambda: scratch_dir("autolab-sandbox-"))

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()
        self.limits = self.limits or ResourceLimits.default(self.device)
        # What the sandbox shows of the Python environment: found once, used by the command
        # line and by reset (which must keep the mount points of any root under /tmp).
        self.roots = sorted({p for p in python_roots() if not _under(p, SYSTEM_DIRS)})
        for name in (*STAGING_DIRS, "src"):
            (self.staging / name).mkdir(exist_ok=True)

    # -- the command line ----------------------------------------------------------------------

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """bwrap's command line running `argv` inside the sandbox with `env` (filtered)."""
        args = [
            shutil.which("bwrap") or "bwrap",
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "autolab-sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        ]  # fmt: skip
        for path in SYSTEM_DIRS:
            args += _show(Path(path))
        # /tmp first: the Python environment may itself live under /tmp (a CI checkout's venv),
        # and is then mounted on top of it.
        args += ["--proc", "/proc", "--dev", "/dev", "--bind", str(self.staging / "tmp"), "/tmp"]
        roots = self.roots
        for root in roots:
            args += ["--ro-bind", str(root), str(root)]
        args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        for path in sorted(set(packaged_source_dirs()) | {Path(p).resolve() for p in self.hidden}):
            if any(_under(path, [str(root)]) for root in roots) or _under(path, SYSTEM_DIRS):
                args += ["--tmpfs", str(path)]
        if self.device.startswith("cuda"):
            # The driver finds its devices through /sys (PCI) and talks to them through
            # /dev/nvidia*: both are the machine's, not the referee's.
            args += ["--ro-bind", "/sys", "/sys"]
            for node in sorted(glob.glob("/dev/nvidia*")):
                args += ["--dev-bind", node, node]
        args += ["--ro-bind", str(self.data_dir), str(INNER_DATA)]
        args += ["--ro-bind", str(self.staging / "src"), str(INNER_SRC)]
        for name, inner in STAGING_DIRS.items():
            if name != "tmp":
                args += ["--bind", str(self.staging / name), str(inner)]
        # The root and /dev bubblewrap builds are tmpfs that live as long as the zygote:
        # read-only, so that nothing written there is waiting for the next experiment.
        args += [
            "--remount-ro",
            "/",
            "--remount-ro",
            "/dev",
            "--chdir",
            str(INNER_HOME),
            "--clearenv",
        ]
        for key, value in sorted(inner_environment(env).items()):
            args += ["--setenv", key, value]
        return [*args, "--", *argv]

    # -- between experiments -------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every writable directory: nothing an experiment left is there for the next.

        Mount points bubblewrap made under /tmp for a Python environment that lives there are
        kept: removing one from out here would unmount it inside the running sandbox."""
        tmp_mounts = {
            self.staging / "tmp" / root.relative_to("/tmp")
            for root in self.roots
            if root.is_relative_to("/tmp")
        }
        for name in (*STAGING_DIRS, "src"):
            _empty(self.staging / name, tmp_mounts)

    def stage_script(self, script: Path) -> Path:
        """Copy train.py in; returns the path the sandbox sees it at."""
        shutil.copyfile(script, self.staged_script)
        return INNER_SRC / "train.py"

    @property
    def staged_script(self) -> Path:
        """The staged train.py, as the runner sees it: the sandbox can read it, not change it."""
        return self.staging / "src" / "train.py"

    @property
    def run_dir(self) -> Path:
        """Where the runner reads what the experiment writes to /autolab/run, while it runs."""
        return self.staging / "run"

    def collect(self, run_dir: Path, taken: Collection[str] = ()) -> None:
        """Move the run's plain files and folders into `run_dir`; links, devices, sockets and
        fifos the experiment made are left behind (and removed by the next reset), and so are
        the top-level names in `taken`: files the runner took out earlier, which stay as taken."""
        _move_plain(self.staging / "run", Path(run_dir), skip=set(taken))

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def inner_environment(env: dict[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in env.items() if k in PASSED_ENV or k.startswith(PASSED_ENV_PREFIXES)}
    kept.update(
        {
            k: v
            for k, v in env.items()
            if k.startswith("AUTOLAB_")  # the run's settings, already pointing inside
        }
    )
    kept.update(
        HOME=str(INNER_HOME),
        USER=SANDBOX_USER,
        TMPDIR="/tmp",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return kept


def python_roots() -> list[Path]:
    """The directories the interpreter, its packages and autolab itself are read from."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    roots.update(Path(p) for p in site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        roots.add(Path(site.getusersitepackages()))
    roots.add(Path(autolab.__file__).resolve().parent)
    resolved = {p.resolve() for p in roots if p.exists()}
    # A root inside another is shown with it.
    return sorted(p for p in resolved if not any(p != q and p.is_relative_to(q) for q in resolved))


def packaged_source_dirs() -> list[Path]:
    """Where the packages that hold raw text sources are installed, if they are."""
    dirs = []
    for name in PACKAGED_SOURCES:
        spec = importlib.machinery.PathFinder.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            dirs.append(Path(location).resolve())
    return dirs


def _show(path: Path) -> list[str]:
    if path.is_symlink():
        return ["--symlink", os.readlink(path), str(path)]
    if path.is_dir():
        return ["--ro-bind", str(path), str(path)]
    return []


def _under(path: Path, roots) -> bool:
    return any(Path(path).is_relative_to(root) for root in roots)


def _empty(folder: Path, keep: set[Path]) -> None:
    """Remove everything in `folder` but the paths in `keep` (and the folders leading to them)."""
    for entry in folder.iterdir():
        if entry in keep:
            continue
        if any(k.is_relative_to(entry) for k in keep) and entry.is_dir() and not entry.is_symlink():
            _empty(entry, keep)
        else:
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # The experiment may have left a read-only folder; make it ours again first.
        for parent, dirs, _ in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(parent, name), 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        path.unlink()


def _move_plain(source: Path, destination: Path, skip: set[str] = frozenset()) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name in skip:
            continue
        mode = entry.lstat().st_mode
        target = destination / entry.name
        if stat.S_ISDIR(mode):
            _move_plain(entry, target)
        elif stat.S_ISREG(mode):
            if target.exists() or target.is_symlink():
                _remove(target)
            shutil.move(str(entry), str(target))
