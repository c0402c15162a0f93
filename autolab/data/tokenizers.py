"""Tokenizers: byte, char and byte-level BPE, with one shared shape.

Each has `name`, `vocab_size`, `encode(text)`, `decode(ids)`, `token_bytes` (how many UTF-8 bytes
each id stands for, so bits per byte are exact whatever the tokenizer), `token_label(id)` (a
visible form for tables), `to_json()` and `unknown_count`. `from_json` picks the right class.
"""

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from autolab.errors import UsageError

BPE_MIN_VOCAB = 257  # the 256 byte tokens, plus at least one merge
BPE_MAX_VOCAB = 2**20
VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}


def visible(text: str) -> str:
    """Whitespace and control characters drawn so a table shows them."""
    out = []
    for ch in text:
        if ch in VISIBLE:
            out.append(VISIBLE[ch])
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def utf8(text: str) -> bytes:
    # surrogateescape: text read from a non-UTF-8 file keeps its original bytes (byte tokenizer).
    return text.encode("utf-8", "surrogateescape")


class ByteTokenizer:
    """The 256 byte values; takes any input."""

    name = "byte"
    vocab_size = 256

    def __init__(self):
        self.unknown_count = 0
        self.token_bytes = np.ones(256, dtype=np.int32)

    def encode(self, text: str) -> list[int]:
        return list(utf8(text))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def token_label(self, token_id: int) -> str:
        if token_id < 128:
            return visible(chr(token_id))
        return f"<0x{token_id:02X}>"

    def to_json(self) -> dict:
        return {"kind": "byte"}


class CharTokenizer:
    """One id per character seen anywhere in the data; id 0 stands for unseen characters.

    The vocabulary is built from all splits, so validation never holds an unknown; id 0 is
    there for text typed later (a sampling prompt), and each use is counted.
    """

    UNKNOWN = 0

    def __init__(self, chars: list[str]):
        self.chars = sorted(set(chars))
        self.ids = {ch: i for i, ch in enumerate(self.chars, start=1)}
        self.vocab_size = len(self.chars) + 1
        self.name = "char"
        self.unknown_count = 0
        self.token_bytes = np.array([1] + [len(utf8(ch)) for ch in self.chars], dtype=np.int32)

    @classmethod
    def from_texts(cls, texts) -> "CharTokenizer":
        seen = set()
        for text in texts:
            seen.update(text)
        return cls(sorted(seen))

    def encode(self, text: str) -> list[int]:
        ids = [self.ids.get(ch, self.UNKNOWN) for ch in text]
        self.unknown_count += ids.count(self.UNKNOWN)
        return ids

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] if i > 0 else "\ufffd" for i in map(int, ids))

    def token_label(self, token_id: int) -> str:
        return "<unk>" if token_id == self.UNKNOWN else visible(self.chars[token_id - 1])

    def to_json(self) -> dict:
        return {"kind": "char", "chars": self.chars}


@lru_cache(maxsize=1)
def byte_level_table() -> dict[str, int]:
    """The GPT-2 byte-to-unicode map, inverted: ByteLevel token characters -> byte values.

    HF's ByteLevel pre-tokenizer writes each byte as one printable character; to know how many
    bytes a token stands for we map its characters back.
    """
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


class BPETokenizer:
    """Byte-level BPE from HF `tokenizers`, trained on the train split only."""

    def __init__(self, hf_tokenizer, name: str | None = None):
        self.hf = hf_tokenizer
        # Small data can run out of merges before N; the name keeps the requested spec (it is
        # part of the cache key) and vocab_size says what was learned.
        self.vocab_size = hf_tokenizer.get_vocab_size()
        self.name = name or f"bpe:{self.vocab_size}"
        self.unknown_count = 0  # byte-level: every input is representable
        table = byte_level_table()
        self.token_raw = [b""] * self.vocab_size
        for token, token_id in hf_tokenizer.get_vocab().items():
            self.token_raw[token_id] = bytes(table[ch] for ch in token)
        self.token_bytes = np.array([len(b) for b in self.token_raw], dtype=np.int32)

    @classmethod
    def train(cls, texts, vocab_size: int) -> "BPETokenizer":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf, f"bpe:{vocab_size}")

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts)]

    def decode(self, ids) -> str:
        return b"".join(self.token_raw[int(i)] for i in ids).decode("utf-8", errors="replace")

    def token_label(self, token_id: int) -> str:
        return visible(self.token_raw[token_id].decode("utf-8", errors="replace"))

    def to_json(self) -> dict:
        return {"kind": "bpe", "name": self.name, "hf": json.loads(self.hf.to_str())}


def parse_spec(spec: str) -> tuple[str, int | None]:
    """`byte`, `char` or `bpe:N` -> (kind, N)."""
    if spec in ("byte", "char"):
        return spec, None
    match = re.fullmatch(r"bpe:(\d+)", spec)
    if match and BPE_MIN_VOCAB <= int(match.group(1)) <= BPE_MAX_VOCAB:
        return "bpe", int(match.group(1))
    raise UsageError(
        f"unknown tokenizer {spec!r}; use byte, char or bpe:N "
        f"(N from {BPE_MIN_VOCAB} to {BPE_MAX_VOCAB}, e.g. bpe:4096)"
    )


def build(spec: str, all_texts: list[str], train_texts: list[str]):
    """A tokenizer for `spec`: char sees every split, BPE learns from train only."""
    kind, size = parse_spec(spec)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer.from_texts(all_texts)
    return BPETokenizer.train(train_texts, size)


def from_json(data: dict):
    kind = data["kind"]
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer(data["chars"])
    if kind == "bpe":
        from tokenizers import Tokenizer

        return BPETokenizer(Tokenizer.from_str(json.dumps(data["hf"])), data.get("name"))
    raise ValueError(f"unknown tokenizer kind {kind!r} in tokenizer.json")


def load_tokenizer(data_dir: Path):
    """The tokenizer a prepared data directory was made with (its `tokenizer.json`)."""
    return from_json(json.loads((Path(data_dir) / "tokenizer.json").read_text()))
