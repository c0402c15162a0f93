"""The sealed store: everything the sealed evaluator reads, copied at prepare time and hashed.

    home/sealed/<key>/  val.bin  meta.json  token_bytes.npy  hashes.json

The evaluator reads the validation split, the metadata and the bytes-per-token table only from
here, never from the public directory an experiment is handed (an experiment that rewrote
`token_bytes.npy` there would change the unit of its own score). `hashes.json` holds each
file's SHA-256, written when the store is made; the runner reads it once when a session's
workers start and checks the files against those hashes before every score.
"""

import hashlib
import json
import shutil
from pathlib import Path

SEALED_FILES = ("val.bin", "meta.json", "token_bytes.npy")
HASHES_FILE = "hashes.json"
COPIED_FROM_PUBLIC = ("meta.json", "token_bytes.npy")


def seal(sealed_dir: Path, public_dir: Path) -> None:
    """Copy the evaluator's public inputs into `sealed_dir` (which holds val.bin) and hash all."""
    for name in COPIED_FROM_PUBLIC:
        shutil.copyfile(public_dir / name, sealed_dir / name)
    hashes = {name: file_hash(sealed_dir / name) for name in SEALED_FILES}
    (sealed_dir / HASHES_FILE).write_text(json.dumps(hashes, indent=2) + "\n")


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recorded_hashes(sealed_dir: Path) -> dict[str, str]:
    """The hashes written when the store was made ({} for a store without them)."""
    try:
        hashes = json.loads((Path(sealed_dir) / HASHES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return hashes if isinstance(hashes, dict) else {}


def changed_files(sealed_dir: Path, expected: dict[str, str]) -> list[str]:
    """The sealed files that are missing or differ from `expected` (all of them, if the store
    has no hashes at all)."""
    if set(expected) != set(SEALED_FILES):
        return list(SEALED_FILES)
    changed = []
    for name, digest in expected.items():
        path = Path(sealed_dir) / name
        if not path.is_file() or file_hash(path) != digest:
            changed.append(name)
    return changed
