import numpy as np
import pytest

from autolab.data import tokenizers
from autolab.data.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer
from autolab.errors import UsageError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\tSpeak — ñ 漢字!"


def shakespeare_slice(shared_data, n=60_000) -> str:
    return (shared_data / "tinyshakespeare.txt").read_text()[:n]


def check_round_trip(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    # token_bytes makes bits per byte exact: the bytes of the ids add up to the text's bytes.
    assert int(np.asarray(tok.token_bytes)[ids].sum()) == len(text.encode("utf-8"))
    assert len(tok.token_bytes) == tok.vocab_size
    assert tok.token_bytes.dtype == np.int32


def test_byte_round_trip_and_labels():
    tok = ByteTokenizer()
    check_round_trip(tok, TEXT)
    assert tok.vocab_size == 256
    assert tok.token_label(10) == "⏎" and tok.token_label(32) == "␣" and tok.token_label(9) == "⇥"
    assert tok.decode([0xFF]) == "\ufffd"  # invalid bytes decode instead of raising


def test_char_round_trip_and_unknowns():
    tok = CharTokenizer.from_texts([TEXT])
    check_round_trip(tok, TEXT)
    assert tok.unknown_count == 0
    ids = tok.encode("F#%@")  # never seen
    assert ids[1:] == [0, 0, 0]
    assert tok.unknown_count == 3
    assert tok.token_label(0) == "<unk>"
    assert tok.token_bytes[0] == 1
    assert tok.token_label(tok.encode("\n")[0]) == "⏎"


def test_bpe_round_trip_on_real_text(shared_data):
    text = shakespeare_slice(shared_data)
    tok = BPETokenizer.train([text], 300)
    assert tok.name == "bpe:300" and tok.vocab_size == 300
    check_round_trip(tok, text[:5000])
    check_round_trip(tok, TEXT)  # unseen characters still encode, byte by byte
    assert len(tok.encode(text[:5000])) < 5000  # merges actually compress


@pytest.mark.parametrize("make", ["byte", "char", "bpe"])
def test_json_round_trip(make, shared_data):
    text = shakespeare_slice(shared_data, 20_000)
    tok = tokenizers.build("bpe:300" if make == "bpe" else make, [text], [text])
    again = tokenizers.from_json(tok.to_json())
    assert again.name == tok.name and again.vocab_size == tok.vocab_size
    assert again.encode(text[:2000]) == tok.encode(text[:2000])
    assert np.array_equal(again.token_bytes, tok.token_bytes)


@pytest.mark.parametrize("spec", ["bpe:abc", "bpe:10", "wordpiece", "bpe:", "BYTE"])
def test_bad_spec(spec):
    with pytest.raises(UsageError):
        tokenizers.parse_spec(spec)
