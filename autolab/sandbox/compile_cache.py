"""torch.compile's cache across sandboxed runs, without a channel from one experiment to the next.

Every experiment starts in an emptied staging directory (autolab.sandbox.layout), so a train.py
that compiles (COMPILE = True, as the CUDA sizing does) compiled from nothing on every run: on
2 CPU cores a 30 s run of the gpt recipe took 42 s to its first step and made 1 step; with the
compiler's cache at hand it starts in under 5 s (README, "Integrity"). Handing on the cache an
experiment wrote would hand the next experiment whatever it put there: its trained weights,
say, for a second budget of training.

So the cache that carries over is written only by runs of autolab's own code: a train.py that
differs from a shipped recipe in nothing but the literal values of its constants. Every
sandboxed run starts with a copy of it, and writes to its copy only. The compiler files what it
builds under a key of the graph it compiled, so a run finds an entry only by compiling the very
graph it was built from, out of the same values: nothing it did not already hold.
"""

import os
import re
import shutil
import stat
from functools import cache
from importlib.metadata import version
from pathlib import Path

from autolab.paths import autolab_home
from autolab.sandbox.layout import SANDBOX_USER

IN_SANDBOX = Path("/tmp/autolab-compile-cache")  # the run's copy, inside its staging /tmp
# What carries, by its name in the carried cache -> where a run finds it. Inductor keeps its C++
# precompiled headers (~150 MB, rebuilt in ~10 s on 2 CPU cores when missing, even when every
# kernel is in the cache) under /tmp/torchinductor_<user>, whatever TORCHINDUCTOR_CACHE_DIR says.
CARRIED = {
    "inductor": IN_SANDBOX / "inductor",
    "triton": IN_SANDBOX / "triton",
    "precompiled_headers": Path(f"/tmp/torchinductor_{SANDBOX_USER}/precompiled_headers"),
}
NOT_CARRIED = ("precompiled_headers", "locks")  # inside those: headers come from their own place
LITERAL_KINDS = ("int", "pow2", "float", "bool", "str", "tuple")  # research.constants' kinds
# A train.py that says it does not compile is given no copy (the headers alone are ~150 MB).
NOT_COMPILED = re.compile(r"^COMPILE\s*=\s*False\b", re.MULTILINE)


def trusted_dir(home: Path | None = None) -> Path:
    """Where the carried cache lives, outside anything a sandbox shows: one per torch version."""
    return (home or autolab_home()) / "compile-cache" / f"torch-{version('torch')}"


def environment() -> dict[str, str]:
    """The variables that point torch's compilers at the run's copy."""
    return {
        "TORCHINDUCTOR_CACHE_DIR": str(CARRIED["inductor"]),
        "TRITON_CACHE_DIR": str(CARRIED["triton"]),
    }


def is_recipe_code(source: str) -> bool:
    """Whether `source` is a shipped recipe, sized for any device, but for its constants'
    literal values. A constant written as an expression is code, and makes it not one."""
    code = _without_literal_values(source)
    return code is not None and code in _shipped_code()


@cache
def _shipped_code() -> frozenset[str]:
    """Every shipped recipe, sized for every device, without its values: worked out once per
    process (a session checks every run's train.py against them)."""
    from autolab.recipes import DEVICES, RECIPES, recipe_source

    return frozenset(
        _without_literal_values(recipe_source(name, device))
        for name in RECIPES
        for device in DEVICES
    )


def seed(staging_tmp: Path, script: Path, home: Path | None = None) -> None:
    """Copy the carried cache into a run's staging /tmp (emptied before each run), unless its
    train.py (`script`) sets COMPILE = False."""
    trusted = trusted_dir(home)
    if not trusted.is_dir() or NOT_COMPILED.search(script.read_text(errors="replace")):
        return
    for name, inner in CARRIED.items():
        if (trusted / name).is_dir():
            shutil.copytree(trusted / name, _staged(staging_tmp, inner), dirs_exist_ok=True)


def carry_over(staging_tmp: Path, script: Path, home: Path | None = None) -> int:
    """After a run has ended: harvest its cache if it has one and `script` (its staged train.py)
    is recipe code. A run that compiled nothing and was given nothing costs no check."""
    staged = [_staged(staging_tmp, inner) for inner in CARRIED.values()]
    if not any(path.is_dir() for path in staged):
        return 0
    if not is_recipe_code(script.read_text(errors="replace")):
        return 0
    return harvest(staging_tmp, home)


def harvest(staging_tmp: Path, home: Path | None = None) -> int:
    """Add what a run of recipe code compiled to the carried cache, once every process of the
    run has ended: plain files only, each written whole (a copy renamed into place), none
    replacing one already there, none half-written. Returns how many files were added."""
    added = 0
    for name, inner in CARRIED.items():
        copy, target = _staged(staging_tmp, inner), trusted_dir(home) / name
        for folder, dirs, files in os.walk(copy):  # links to folders are not followed
            dirs[:] = [d for d in dirs if d not in NOT_CARRIED]
            for file in files:
                path = Path(folder) / file
                # Hidden names are files half-written when the run ended (torch writes a
                # ".*.tmp" and renames it into place).
                if file.startswith(".") or not stat.S_ISREG(path.lstat().st_mode):
                    continue
                destination = target / path.relative_to(copy)
                if destination.exists():
                    continue
                if not _add(path, destination):
                    return added  # a full disk: the cache is an optimisation, the run is kept
                added += 1
    return added


def _add(path: Path, destination: Path) -> bool:
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, partial, follow_symlinks=False)
        os.replace(partial, destination)
    except OSError:
        partial.unlink(missing_ok=True)
        return False
    return True


def _staged(staging_tmp: Path, inner: Path) -> Path:
    """Where the runner sees `inner`, a path under the sandbox's /tmp."""
    return Path(staging_tmp) / inner.relative_to("/tmp")


def _without_literal_values(source: str) -> str | None:
    """`source` with every literal constant's value cut out; None if it does not parse."""
    from autolab.research.constants import parse_constants

    try:
        constants = parse_constants(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not a recipe, whatever it is
        return None
    lines = source.splitlines(keepends=True)
    # From the last value to the first, so earlier spans stay where they are.
    spans = sorted((c.span for c in constants.values() if c.kind in LITERAL_KINDS), reverse=True)
    for line, col, end_line, end_col in spans:
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        lines[line - 1 : end_line] = [head + "…" + tail]
    return "".join(lines)
