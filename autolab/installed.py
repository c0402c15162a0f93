"""Are the referee's installed packages what pip installed? Checked before a zygote starts.

An experiment that could write torch or autolab would change the code that scores the next
one. In the sandbox they are read-only; with process isolation they are not, so before every
zygote start (`autolab train`, each `autolab research` session and `--resume`) autolab checks
the installed files of `torch` and of autolab itself against the SHA-256 hashes pip recorded
when it installed them (each distribution's RECORD), and refuses to run on a mismatch.

Hashing torch's ~750 MB takes seconds, so a file whose size, mtime, ctime and inode are the
same as when it last matched is not hashed again: that record lives in the user's cache
(~/.cache/autolab-installed, whatever AUTOLAB_HOME says), outside every sandbox. ctime cannot
be set by a program (only by the clock), so an edit cannot hide behind an old timestamp. An
editable (development) install of autolab has no hashes for its sources; its files are
guarded while an experiment runs (autolab.research.integrity) and read-only in the sandbox.
"""

import base64
import hashlib
import importlib.metadata
import json
import os
import time
from pathlib import Path

from autolab.errors import UsageError

CHECKED = ("torch", "autolab")
RECHECK_AFTER_S = 10.0  # zygotes started together (training and evaluator) share one check
_last_check = {"at": float("-inf")}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autolab-installed"


def check_installed(packages: tuple[str, ...] = CHECKED, cache: Path | None = None) -> None:
    """Raise a one-line UsageError if a checked package's file differs from its RECORD."""
    if time.monotonic() - _last_check["at"] < RECHECK_AFTER_S and cache is None:
        return
    for name in packages:
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed as a distribution (run from a source tree)
        changed = changed_files(distribution, cache or cache_dir())
        if changed:
            more = f" and {len(changed) - 3} more" if changed[3:] else ""
            shown = ", ".join(changed[:3]) + more
            raise UsageError(
                f"{name}'s installed files differ from what pip installed ({shown}): something "
                f"changed them; reinstall it (pip install --force-reinstall --no-deps {name}"
                f"=={distribution.version}) before trusting any score"
            )
    _last_check["at"] = time.monotonic()


def changed_files(distribution, cache: Path) -> list[str]:
    """Files of `distribution` whose content no longer matches the hash in its RECORD."""
    where = hashlib.sha256(str(distribution.locate_file("")).encode()).hexdigest()[:12]
    cache_path = cache / f"{distribution.name}-{distribution.version}-{where}.json"  # per venv
    try:
        verified = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        verified = {}
    now_verified, changed = {}, []
    # Paths joined as strings: pathlib's parsing cost more than the ~12,000 stats of torch's files.
    base = str(distribution.locate_file(""))
    for entry in distribution.files or []:
        if entry.hash is None or entry.hash.mode != "sha256":
            continue  # RECORD itself, .pyc files, an editable install's sources
        key = str(entry)
        path = os.path.join(base, key)
        try:
            stat = os.stat(path)
        except OSError:
            changed.append(key)
            continue
        fingerprint = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        if verified.get(key) != fingerprint and _digest(path) != entry.hash.value:
            changed.append(key)
            continue
        now_verified[key] = fingerprint
    if not changed and now_verified != verified:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(now_verified))
        tmp.replace(cache_path)
    return changed


def _digest(path: str) -> str:
    """A file's SHA-256 as RECORD writes it: urlsafe base64 without padding."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
