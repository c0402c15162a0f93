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

The carried cache is copied into every compiled run, so it is kept under LIMIT_BYTES: past it,
the files a run of recipe code used least recently go first (a file a run read is marked used).
"""

import hashlib
import os
import re
import shutil
import stat
import threading
from functools import cache, partial
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
# Never pruned: a run whose kernels are all cached only checks that the header is there, so it
# never reads as used, and it is the dearest to build again. A machine has one per torch build.
KEPT = ("precompiled_headers",)
LITERAL_KINDS = ("int", "pow2", "float", "bool", "str", "tuple")  # research.constants' kinds
# A train.py that says it does not compile is given no copy (the headers alone are ~150 MB).
NOT_COMPILED = re.compile(r"^COMPILE\s*=\s*False\b", re.MULTILINE)
# Seeding copies all of it into every compiled run (~0.1 s for the 150 MB of headers here, 2 AMD
# EPYC cores, 2026-12-08), and a long search adds a few MB per model shape on a CPU, more on a
# GPU. Pruned down to PRUNED_TO of the limit, so that one run past it does not prune every run.
LIMIT_BYTES = 1 << 30
PRUNED_TO = 0.8


def trusted_dir(home: Path | None = None) -> Path:
    """Where the carried cache lives, outside anything a sandbox shows: one per torch version."""
    return (home or autolab_home()) / "compile-cache" / f"torch-{version('torch')}"


def environment() -> dict[str, str]:
    """The variables that point torch's compilers at the run's copy."""
    return {
        "TORCHINDUCTOR_CACHE_DIR": str(CARRIED["inductor"]),
        "TRITON_CACHE_DIR": str(CARRIED["triton"]),
    }


def recipes_dir(home: Path | None = None) -> Path:
    """The recipe texts `autolab init` wrote, without their values, one file per hash: a
    workspace made before an upgrade of autolab stays recipe code once the shipped one changes."""
    return (home or autolab_home()) / "compile-cache" / "recipes"


def is_recipe_code(source: str, home: Path | None = None) -> bool:
    """Whether `source` is a recipe autolab shipped (this version, or one whose `autolab init`
    wrote a workspace here), sized for any device, but for its constants' literal values. A
    constant written as an expression is code, and makes it not one."""
    code = _without_literal_values(source)
    if code is None:
        return False
    return code in _shipped_code() or (recipes_dir(home) / _digest(code)).is_file()


def remember_recipe(source: str, home: Path | None = None) -> None:
    """Record that autolab wrote `source` (a recipe, as `autolab init` copies it) as its own
    code. Only an optimisation: where the record cannot be written, nothing else fails."""
    code = _without_literal_values(source)
    if code is None:
        raise ValueError("a shipped recipe does not parse")  # autolab's own bug, not the user's
    try:
        recipes_dir(home).mkdir(parents=True, exist_ok=True)
        _write_whole(recipes_dir(home) / _digest(code), lambda path: path.write_text(code))
    except OSError:
        pass


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


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
    train.py (`script`) sets COMPILE = False.

    Each copy's access time is set before its modification time, so that reading it sets it
    anew (Linux's default relatime does so, noatime does not): `carry_over` then knows which
    files the run used. A file another session prunes meanwhile is simply not copied; on a full
    disk the run gets what was copied whole, and compiles the rest."""
    trusted = trusted_dir(home)
    if not trusted.is_dir() or NOT_COMPILED.search(script.read_text(errors="replace")):
        return
    for name, inner in CARRIED.items():
        for path, relative in _files(trusted / name):
            copy = _staged(staging_tmp, inner) / relative
            try:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
                os.utime(copy, ns=(0, path.stat().st_mtime_ns))
            except OSError as err:
                copy.unlink(missing_ok=True)
                if not isinstance(err, FileNotFoundError):
                    return


def carry_over(staging_tmp: Path, script: Path, home: Path | None = None) -> int:
    """After a run has ended, if it has a cache and `script` (its staged train.py) is recipe
    code: mark the carried files it read as used, harvest what it added, and prune the carried
    cache to its limit. Returns how many files were added. A run of any other code changes
    nothing here, not even which files count as used. A run that compiled nothing and was given
    nothing costs no check."""
    staged = [_staged(staging_tmp, inner) for inner in CARRIED.values()]
    if not any(path.is_dir() for path in staged):
        return 0
    if not is_recipe_code(script.read_text(errors="replace"), home):
        return 0
    mark_used(staging_tmp, home)
    added = harvest(staging_tmp, home)
    prune(home)
    return added


def mark_used(staging_tmp: Path, home: Path | None = None) -> int:
    """Give every carried file that the run read (its copy's access time no longer the zero
    `seed` gave it) the current modification time: `prune` removes the oldest first."""
    marked, trusted = 0, trusted_dir(home)
    for name, inner in CARRIED.items():
        for copy, relative in _files(_staged(staging_tmp, inner)):
            try:
                if copy.lstat().st_atime_ns > 0:
                    os.utime(trusted / name / relative)
                    marked += 1
            except FileNotFoundError:  # new in this run (harvested next), or pruned meanwhile
                pass
            except OSError:  # the cache is an optimisation: it never fails a run
                return marked
    return marked


def prune(home: Path | None = None, limit: int = LIMIT_BYTES) -> int:
    """Past `limit` bytes, remove the carried files least recently used (or added), but for the
    KEPT ones, until the cache is down to PRUNED_TO of it; returns how many were removed.
    Inductor and Triton compile again whatever they miss, so any of their files may go."""
    files, trusted = [], trusted_dir(home)
    carried = ((name, path) for name in CARRIED for path, _ in _files(trusted / name))
    for name, path in carried:
        try:
            status = path.stat()
        except FileNotFoundError:  # pruned by another session meanwhile
            continue
        files.append((status.st_mtime_ns, status.st_size, path, name in KEPT))
    total = sum(size for _, size, _, _ in files)
    if total <= limit:
        return 0
    removed = 0
    for _, size, path, kept in sorted(files, key=lambda f: f[0]):
        if total <= limit * PRUNED_TO:
            break
        if kept:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a folder it may not write: the next harvest tries again
            break
        total -= size
        removed += 1
    return removed


def harvest(staging_tmp: Path, home: Path | None = None) -> int:
    """Add what a run of recipe code compiled to the carried cache, once every process of the
    run has ended: plain files only, each written whole (a copy renamed into place), none
    replacing one already there, none half-written. Returns how many files were added."""
    added, trusted = 0, trusted_dir(home)  # one metadata lookup of torch's version, not one a file
    for name, inner in CARRIED.items():
        for path, relative in _files(_staged(staging_tmp, inner)):
            destination = trusted / name / relative
            if destination.exists():
                continue
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                _write_whole(destination, partial(shutil.copyfile, path))
            except OSError:
                return added  # a full disk: the cache is an optimisation, the run is kept
            added += 1
    return added


def _files(folder: Path):
    """(path, path relative to `folder`) of each plain file under `folder`, but for hidden ones:
    torch writes a ".*.tmp" and renames it into place, and so does `_write_whole`, so a hidden
    file is one half-written. Links are never followed, and `NOT_CARRIED` folders not entered."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in NOT_CARRIED]
        for file in files:
            path = Path(parent) / file
            try:
                plain = stat.S_ISREG(path.lstat().st_mode)
            except FileNotFoundError:
                continue
            if plain and not file.startswith("."):
                yield path, path.relative_to(folder)


def _write_whole(destination: Path, write) -> None:
    """`write(unfinished)` a hidden file beside `destination`, then rename it into place. The
    name is the writer's own: parallel workers are threads of one process, and two of them may
    harvest the same new file."""
    writer = f"{os.getpid()}.{threading.get_ident()}"
    unfinished = destination.with_name(f".{destination.name}.{writer}.partial")
    try:
        write(unfinished)
        os.replace(unfinished, destination)
    except OSError:
        unfinished.unlink(missing_ok=True)
        raise


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
