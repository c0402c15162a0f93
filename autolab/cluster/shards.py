"""The public shards a node trains on: sent once per session through Ray's object store,
written to the node's disk and checked against the driver's SHA-256 before every experiment.

Only the public data directory travels (train, dev, tokenizer, meta); the sealed store never
does. A node keeps one copy per dataset, named by the driver's cache key, and a copy that no
longer matches the hashes (a process-isolated experiment may write to it) is written again.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from autolab.data.sealed_store import file_hash

NODE_CACHE = "autolab-ray-data"  # under the node's temporary directory


@dataclass(frozen=True)
class ShardSet:
    """The dataset's identity: its cache key and each public file's hash."""

    key: str  # the driver's data directory name: dataset, tokenizer and content digest
    hashes: dict[str, str]  # file name -> SHA-256

    @classmethod
    def of(cls, data_dir: Path) -> "ShardSet":
        files = sorted(p for p in Path(data_dir).iterdir() if p.is_file())
        return cls(Path(data_dir).name, {p.name: file_hash(p) for p in files})

    def read(self, data_dir: Path) -> dict[str, bytes]:
        """The files' contents, to put in the object store once per session."""
        return {name: (Path(data_dir) / name).read_bytes() for name in self.hashes}

    def mismatches(self, data_dir: Path) -> list[str]:
        """The files under `data_dir` that are missing or differ from the driver's."""
        return [
            name
            for name, digest in self.hashes.items()
            if not (data_dir / name).is_file() or file_hash(data_dir / name) != digest
        ]


class ShardMismatch(RuntimeError):
    """The shards that arrived are not the driver's: the experiment must not run on them."""


def materialize(shards: ShardSet, fetch, root: Path | None = None) -> Path:
    """The node's copy of the shards, checked by hash; written from `fetch()` (the contents
    from the object store) when it is missing or differs."""
    root = Path(root or tempfile.gettempdir()) / NODE_CACHE
    target = root / shards.key
    if target.is_dir() and not shards.mismatches(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    # One task of the node at a time writes the copy: another that found none a moment ago must
    # not move aside the right copy a running experiment was just handed.
    with FileLock(root / f".{shards.key}.lock"):
        if target.is_dir() and not shards.mismatches(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{shards.key}-", dir=root))
        for name, content in fetch().items():
            (staging / name).write_bytes(content)
        bad = shards.mismatches(staging)
        if bad:
            shutil.rmtree(staging, ignore_errors=True)
            raise ShardMismatch(f"shards from the driver fail their hash check: {', '.join(bad)}")
        old = root / f".{shards.key}-old-{os.getpid()}"
        if target.exists():
            target.rename(old)  # a stale or tampered copy: moved aside, then removed
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    return target
