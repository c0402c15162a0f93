"""Prepare a dataset once: documents -> split -> tokenizer -> token shards on disk, cached.

Layout (a contract the harness and the evaluator read):

    home/data/<key>/    meta.json  tokenizer.json  token_bytes.npy  train.bin  dev.bin
    home/sealed/<key>/  val.bin  meta.json  token_bytes.npy  hashes.json   (sealed_store.py)

`.bin` files are raw arrays (uint16 when the vocabulary fits, else uint32); each split is its
documents in source order, each followed by the source's separator. The key hashes the source's
content, the tokenizer spec and the split/format versions, so a change in any of them prepares
anew and an unchanged request reuses what is there.

Both directories are written under temp names and renamed into place, sealed first, so a
`meta.json` in the public directory means everything is complete. One process at a time
prepares a key (a lock file beside the shards): a second one waits and then finds it done,
instead of replacing a directory the first may already have handed to a running experiment.
"""

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from filelock import FileLock

from autolab.data import tokenizers
from autolab.data.sealed_store import HASHES_FILE, seal
from autolab.data.sources import LoadOptions, load_documents
from autolab.data.split import SPLIT_VERSION, split_documents
from autolab.paths import autolab_home

# 2: one-per-line documents are stored in hash order (see ordered_splits); 3: the sealed store
# holds its own hashed copies of what the evaluator reads (see sealed_store)
FORMAT_VERSION = 3
SPLITS = ("train", "dev", "val")


@dataclass
class Prepared:
    data_dir: Path  # public: meta.json, tokenizer.json, token_bytes.npy, train.bin, dev.bin
    val_path: Path  # sealed: never handed to a training process
    meta: dict
    cached: bool


def sealed_val_path(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    return data_dir.parent.parent / "sealed" / data_dir.name / "val.bin"


def read_tokens(path: Path, meta: dict) -> np.memmap:
    """A split's tokens, memory-mapped."""
    return np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r")


def source_hash(texts: list[str], separator: str) -> str:
    """SHA-256 over the documents, length-prefixed so boundaries count, then the separator."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    h.update(separator.encode("utf-8"))
    return h.hexdigest()


def cache_key(dataset: str, spec: str, content_hash: str) -> str:
    parts = f"{content_hash}\n{spec}\nsplit{SPLIT_VERSION}\nformat{FORMAT_VERSION}"
    digest = hashlib.sha256(parts.encode()).hexdigest()
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.]+", "_", s).strip("_") or "data"  # noqa: E731
    return f"{safe(dataset)}-{safe(spec)}-{digest[:12]}"


def is_complete(data_dir: Path) -> bool:
    try:
        meta = json.loads((data_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    sealed = sealed_val_path(data_dir).parent
    return meta.get("format") == FORMAT_VERSION and (sealed / HASHES_FILE).is_file()


def ordered_splits(docs, split) -> dict[str, list[str]]:
    """Each split's documents, in the order they are written.

    Paragraph documents (speeches, stories, tunes) keep the source's order: what precedes a
    speech is real context. One-per-line documents are a list (names), and a list's order is an
    artifact: names.txt is sorted by popularity, and a model trained and scored on it in that
    order learns the neighbours instead of names (measured: 2.54 bpb in file order against
    3.18 on the same names shuffled). So those are written in the order of their content hash:
    a shuffle that is the same everywhere.
    """
    texts = {s: [docs.texts[i] for i in getattr(split, s)] for s in SPLITS}
    if docs.separator == "\n":
        for s in SPLITS:
            texts[s].sort(
                key=lambda text: hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()
            )
    return texts


def encode_split(tokenizer, texts: list[str], separator: str) -> list[int]:
    pieces = [text + separator for text in texts]
    if hasattr(tokenizer, "encode_batch"):  # BPE: encoding doc+separator together, in parallel
        return [i for ids in tokenizer.encode_batch(pieces) for i in ids]
    return tokenizer.encode("".join(pieces))


def prepare(
    dataset: str = "names",
    tokenizer: str = "char",
    source_path: str | None = None,
    lines: bool = False,
    field: str | None = None,
    column: str | None = None,
    home: str | None = None,
    secret_split: bool = False,
) -> Prepared:
    """Prepare (or reuse) the token shards for `dataset` under `tokenizer`; with
    `secret_split`, split by a secret kept in the sealed store (autolab.data.split)."""
    kind, _ = tokenizers.parse_spec(tokenizer)  # refuse a bad spec before reading any data
    root = autolab_home(home)
    opts = LoadOptions(
        path=Path(source_path).expanduser() if source_path else None,
        lines=lines,
        field=field or "text",
        column=column or "text",
        strict_utf8=kind != "byte",
        home=root,
    )
    name, docs = load_documents(dataset, opts)
    prefix = opts.path.stem if name == "file" else name
    content_hash = source_hash(docs.texts, docs.separator)
    key = cache_key(prefix, tokenizer, content_hash)
    secret = split_secret(root / "sealed" / f"{key}.secret") if secret_split else b""
    if secret:  # another split, so other shards: its own cache entry, named by the secret's hash
        key = f"{key}-secret{hashlib.sha256(secret).hexdigest()[:8]}"
    data_dir = root / "data" / key
    if is_complete(data_dir):
        return _prepared(data_dir, cached=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(data_dir.parent / f".{key}.lock"):  # one preparer of a key at a time
        if is_complete(data_dir):  # another process prepared it while this one waited
            return _prepared(data_dir, cached=True)
        _write_shards(docs, opts, name, key, content_hash, tokenizer, secret, root)
    return _prepared(data_dir, cached=False)


def _prepared(data_dir: Path, cached: bool) -> Prepared:
    meta = json.loads((data_dir / "meta.json").read_text())
    return Prepared(data_dir, sealed_val_path(data_dir), meta, cached=cached)


def _write_shards(docs, opts, name, key, content_hash, tokenizer, secret, root) -> None:
    """Split, tokenize and write both directories under temp names, then publish them."""
    data_dir, sealed_dir = root / "data" / key, root / "sealed" / key
    sep_bytes = len(docs.separator.encode("utf-8"))
    sizes = [len(t.encode("utf-8", "surrogateescape")) + sep_bytes for t in docs.texts]
    split = split_documents(docs.texts, sizes, secret=secret)
    texts = ordered_splits(docs, split)
    tok = tokenizers.build(tokenizer, [*docs.texts, docs.separator], texts["train"])
    dtype = np.uint16 if tok.vocab_size <= 2**16 else np.uint32

    tmp_public = root / "data" / f".tmp-{key}-{os.getpid()}"
    tmp_sealed = root / "sealed" / f".tmp-{key}-{os.getpid()}"
    try:
        for d in (tmp_public, tmp_sealed):
            d.mkdir(parents=True)
        tokens = {}
        for s in SPLITS:
            ids = np.array(encode_split(tok, texts[s], docs.separator), dtype=dtype)
            ids.tofile((tmp_sealed if s == "val" else tmp_public) / f"{s}.bin")
            tokens[s] = int(len(ids))
        np.save(tmp_public / "token_bytes.npy", tok.token_bytes.astype(np.int32))
        (tmp_public / "tokenizer.json").write_text(json.dumps(tok.to_json()))
        meta = {
            "format": FORMAT_VERSION,
            "key": key,
            "dataset": opts.path.name if name == "file" else name,  # a local file by its name
            "source": docs.source,
            "source_hash": content_hash,
            "secret_split": bool(secret),
            "tokenizer": tok.name,
            "vocab_size": tok.vocab_size,
            "dtype": np.dtype(dtype).name,
            "separator": docs.separator,
            "documents": {s: len(texts[s]) for s in SPLITS},
            "bytes": {s: sum(sizes[i] for i in getattr(split, s)) for s in SPLITS},
            "tokens": tokens,
            "unknown_chars": tok.unknown_count,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (tmp_public / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        seal(tmp_sealed, tmp_public)
        publish(tmp_sealed, sealed_dir)
        publish(tmp_public, data_dir)
    finally:
        shutil.rmtree(tmp_public, ignore_errors=True)
        shutil.rmtree(tmp_sealed, ignore_errors=True)


def split_secret(path: Path) -> bytes:
    """The secret a dataset's secret split is keyed by: made once, kept in the sealed store
    (never mounted in an experiment's sandbox)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(os.urandom(32))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # first one wins: two processes must not make two secrets
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def publish(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target`, replacing a leftover from an interrupted earlier attempt.

    Called under the key's lock and only when the public directory is not complete, so what it
    replaces is never a directory another process finished (and may have mounted for a run).
    """
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
