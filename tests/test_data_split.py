import pytest

from autolab.data.split import MIN_VAL_TOKENS, split_documents
from autolab.errors import UsageError


def names(shared_data) -> list[str]:
    return (shared_data / "names.txt").read_text().split()


def sizes(texts):
    return [len(t.encode()) + 1 for t in texts]


def test_split_is_deterministic_disjoint_and_pinned(shared_data):
    texts = names(shared_data)
    a, b = split_documents(texts, sizes(texts)), split_documents(texts, sizes(texts))
    assert a == b
    train, dev, val = set(a.train), set(a.dev), set(a.val)
    assert not (train & dev or train & val or dev & val)
    assert train | dev | val == set(range(len(texts)))
    assert 0.08 < len(val) / len(texts) < 0.12
    assert 0.03 < len(dev) / len(texts) < 0.07
    # Pinned: this must never change (it would silently change every score); see SPLIT_VERSION.
    side = {texts[i]: s for s in ("train", "dev", "val") for i in getattr(a, s)}
    for name in ["grace", "stella", "genesis", "emilia"]:
        assert side[name] == "val"
    for name in ["hazel", "serenity", "adeline"]:
        assert side[name] == "dev"
    for name in ["emma", "olivia", "ava", "isabella"]:
        assert side[name] == "train"


def test_duplicates_land_on_the_same_side(shared_data):
    texts = names(shared_data)[:5000] * 2
    split = split_documents(texts, sizes(texts))
    side = {}
    for s in ("train", "dev", "val"):
        for i in getattr(split, s):
            assert side.setdefault(texts[i], s) == s


def test_small_data_tops_up_val_and_dev():
    texts = [f"document number {i} " * 3 for i in range(300)]  # ~60 bytes each, ~18 KB
    split = split_documents(texts, sizes(texts))
    s = sizes(texts)
    assert sum(s[i] for i in split.val) >= MIN_VAL_TOKENS
    assert sum(s[i] for i in split.dev) >= MIN_VAL_TOKENS
    assert split.train


def test_too_small():
    texts = ["tiny"] * 10
    with pytest.raises(UsageError, match="too small"):
        split_documents(texts, sizes(texts))


def test_a_secret_split_differs_from_the_default_and_is_stable_per_secret(shared_data):
    texts = names(shared_data)
    default = split_documents(texts, sizes(texts))
    one = split_documents(texts, sizes(texts), secret=b"one")
    assert one == split_documents(texts, sizes(texts), secret=b"one")
    two = split_documents(texts, sizes(texts), secret=b"two")
    assert set(one.val) != set(default.val) != set(two.val)
    assert 0.08 < len(one.val) / len(texts) < 0.12
