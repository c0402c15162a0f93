"""Input that does not fit is a one-line error, and every hint in one leads to a command that
works: each test runs the hinted command."""

import os
import re
import shlex
import subprocess
import sys

import pytest


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "AUTOLAB_HOME": str(tmp_path / "home")}

    def autolab(*args):
        return subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                              text=True, env=env, timeout=300)  # fmt: skip

    return autolab


def one_line_error(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def hinted_command(message: str) -> list[str]:
    return shlex.split(re.search(r"autolab (prepare .*)$", message).group(1))


WORDS = "the quick brown fox jumps over a lazy dog while seven bold kings sing of far lands".split()


def prose(chars: int) -> str:
    """Paragraphs of lines of words, Shakespeare's layout, about `chars` long."""
    lines = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8)) for i in range(400)]
    text, i = "", 0
    while len(text) < chars:
        text += "\n".join(lines[(i * 3 + k) % 400] for k in range(4)) + "\n\n"
        i += 1
    return text[:chars]


@pytest.fixture
def texts(tmp_path):
    (tmp_path / "prose.txt").write_text(prose(60_000))
    names = ["".join("aeilmnorst"[(i * p) % 10] for p in (3, 7, 1, 9, 5)[: 3 + i % 3])
             for i in range(3000)]  # fmt: skip
    (tmp_path / "names.txt").write_text("\n".join(f"{n}{i}" for i, n in enumerate(names)))
    return tmp_path


def latin1_file(path, chars: int):
    path.write_bytes(prose(chars).replace("e", "\xe9").encode("latin-1"))
    return path


def test_the_byte_tokenizer_hint_works(tmp_path, run, texts):
    big = latin1_file(tmp_path / "latin.txt", 60_000)
    message = one_line_error(run("prepare", str(big)))
    assert re.search(r"not UTF-8 at byte \d+; use --tokenizer byte$", message)
    assert run("prepare", str(big), "--tokenizer", "byte").returncode == 0
    # Too small to train on whatever reads it: that is what it says, not the byte hint.
    small = latin1_file(tmp_path / "small.txt", 3000)
    message = one_line_error(run("prepare", str(small)))
    assert "--tokenizer byte" not in message and "too small to train on" in message


def test_names_from_a_file_of_paragraphs(run, texts):
    paragraphs = texts / "prose.txt"
    message = one_line_error(run("prepare", "names", "--from", str(paragraphs)))
    assert "paragraphs, not one name per line" in message
    done = run(*hinted_command(message))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prose.txt: prepared")  # named by its file name
    assert run("prepare", "names", "--from", str(texts / "names.txt")).returncode == 0


def test_abc_without_tunes(tmp_path, run, texts):
    paragraphs = texts / "prose.txt"
    message = one_line_error(run("prepare", "abc", "--from", str(paragraphs)))
    assert "no ABC tunes" in message
    assert run(*hinted_command(message)).returncode == 0
    folder = tmp_path / "tunes"
    folder.mkdir()
    (folder / "a.abc").write_text("not a tune\n")
    message = one_line_error(run("prepare", "abc", "--from", str(folder)))
    assert message == f"error: {folder}: no ABC tunes (a tune starts at a line `X:`)"


def test_field_and_column_where_no_format_has_them(run, texts):
    names = texts / "names.txt"
    message = one_line_error(run("prepare", str(names), "--field", "body"))
    assert message.endswith("has none: drop --field")
    message = one_line_error(run("prepare", "names", "--column", "body"))
    assert message.endswith("the names dataset has none: drop --column")
    assert run("prepare", str(names)).returncode == 0
