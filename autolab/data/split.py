"""The train / dev / val split: a pure function of each document's text.

A document goes to validation when its SHA-256 says so, so the split is identical on every run,
version and machine, and duplicate documents always land on the same side (no leak from train
into val). `dev` is a small public slice carved from the train side the same way, using other
bytes of the hash: a training process may measure itself on dev; val is sealed away from it.

Sizes are counted in UTF-8 bytes, not in a tokenizer's tokens, so the same text gets the same
split under every tokenizer and bits per byte stay comparable across tokenizers.

With a secret (`autolab prepare --secret-split`) the hash is keyed by it: the split is still a
function of the text, but only for whoever holds the secret, which lives in the sealed store.
Anyone with the raw text can rebuild the default split; nobody without the secret can rebuild
a secret one. Scores on a secret split compare only with scores on the same split.
"""

import hashlib
import hmac
from dataclasses import dataclass

from autolab.errors import UsageError

SPLIT_VERSION = 1  # bump when the rule below changes: it invalidates every prepared cache
VAL_PER_MILLE = 100  # ~10% of documents
DEV_PER_MILLE = 50  # ~5% of the train side
MIN_VAL_TOKENS = 4096  # floor for val and dev, in byte tokens (UTF-8 bytes incl. separator)


@dataclass
class Split:
    train: list[int]  # document indices, in source order
    dev: list[int]
    val: list[int]


def ranks(text: str, secret: bytes = b"") -> tuple[int, int, bytes]:
    """(val rank, dev rank, digest): a rank under the per-mille threshold picks the side."""
    data = text.encode("utf-8", "surrogateescape")
    if secret:
        digest = hmac.new(secret, data, hashlib.sha256).digest()
    else:
        digest = hashlib.sha256(data).digest()
    val_rank = int.from_bytes(digest[:8], "big") % 1000
    dev_rank = int.from_bytes(digest[8:16], "big") % 1000
    return val_rank, dev_rank, digest


def take(candidates: dict[bytes, tuple[int, list[int]]], per_mille: int, sizes, minimum):
    """Digests whose rank is under `per_mille`, topped up in ascending rank until `minimum`.

    Candidates are grouped by digest so copies of a document move together.
    """
    order = sorted(candidates, key=lambda d: (candidates[d][0], d))
    chosen, total = [], 0
    for digest in order:
        rank, members = candidates[digest]
        if rank >= per_mille and total >= minimum:
            break
        chosen.append(digest)
        total += sum(sizes[i] for i in members)
    return set(chosen)


def split_documents(
    texts: list[str], sizes: list[int], min_tokens: int = MIN_VAL_TOKENS, secret: bytes = b""
) -> Split:
    """Split documents by content hash (keyed by `secret` when given); `sizes[i]` is document
    i's size in byte tokens."""
    total = sum(sizes)
    # val and dev each need `min_tokens`, and training needs at least as much again.
    if total < 3 * min_tokens:
        raise UsageError(
            f"dataset too small: {total:,} bytes; need at least {3 * min_tokens:,} "
            f"({min_tokens:,} each for val and dev, the rest for training)"
        )
    groups: dict[bytes, tuple[int, int, list[int]]] = {}
    for i, text in enumerate(texts):
        val_rank, dev_rank, digest = ranks(text, secret)
        groups.setdefault(digest, (val_rank, dev_rank, []))[2].append(i)

    val = take({d: (v, m) for d, (v, _, m) in groups.items()}, VAL_PER_MILLE, sizes, min_tokens)
    rest = {d: (r, m) for d, (_, r, m) in groups.items() if d not in val}
    dev = take(rest, DEV_PER_MILLE, sizes, min_tokens)
    if len(dev) == len(rest):
        raise UsageError("dataset too small: nothing is left for training after val and dev")

    side = {}
    for digest, (_, _, members) in groups.items():
        name = "val" if digest in val else "dev" if digest in dev else "train"
        for i in members:
            side[i] = name
    return Split(
        train=[i for i in range(len(texts)) if side[i] == "train"],
        dev=[i for i in range(len(texts)) if side[i] == "dev"],
        val=[i for i in range(len(texts)) if side[i] == "val"],
    )
