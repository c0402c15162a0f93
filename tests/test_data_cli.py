"""`autolab prepare` as a person runs it: a real subprocess, a throwaway AUTOLAB_HOME."""

import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

ROOT = Path(__file__).resolve().parents[1]


def prepare_cli(home: Path, *args: str, cwd: Path = ROOT, **env: str) -> CompletedProcess:
    return autolab_cli(home, "prepare", *args, cwd=cwd, **env)


def autolab_cli(home: Path, *args: str, cwd: Path = ROOT, **env: str) -> CompletedProcess:
    full_env = {**os.environ, "AUTOLAB_HOME": str(home), "COLUMNS": "120", **env}
    return subprocess.run(
        [sys.executable, "-m", "autolab", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prepare_local_names_with_stats(tmp_path, shared_data):
    result = prepare_cli(tmp_path, str(shared_data / "names.txt"), "--lines", "--stats")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "vocabulary 28" in out and "32,033" in out and "top 20 train tokens" in out
    assert "⏎" in out  # the newline token, drawn visibly
    assert str(tmp_path / "sealed") in out
    again = prepare_cli(tmp_path, str(shared_data / "names.txt"), "--lines")
    assert "cached" in again.stdout


def test_prepare_in_a_workspace_prepares_that_workspaces_data(tmp_path, shared_data):
    home, workspace = tmp_path / "home", tmp_path / "ws"
    text = str(shared_data / "tinyshakespeare.txt")
    made = autolab_cli(home, "init", str(workspace), "--dataset", text, "--tokenizer", "byte")
    assert made.returncode == 0, made.stderr
    result = prepare_cli(home, cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "tokenizer byte, vocabulary 256" in result.stdout
    assert "tinyshakespeare-byte-" in result.stdout  # the shards' key names dataset and tokenizer
    flagged = prepare_cli(home, "--tokenizer", "char", cwd=workspace)  # a flag still wins
    assert "tokenizer char" in flagged.stdout and "tinyshakespeare-char-" in flagged.stdout
    elsewhere = prepare_cli(home, "--from", str(shared_data / "names.txt"), cwd=tmp_path)
    assert "names-char-" in elsewhere.stdout


def write_nonutf8(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_bytes(b"anna\nbob\xff\n" + b"".join(b"name%d\n" % i for i in range(3000)))
    return path


BAD_INPUTS = {
    "unknown dataset": (["wikipedia"], "known: names"),
    "missing file": (["{tmp}/nope.txt"], "nope.txt: no such file"),
    "missing --from": (["tinyshakespeare", "--from", "{tmp}/nope.txt"], "no such file"),
    "bad tokenizer": (["names", "--tokenizer", "bpe:abc"], "bpe:N"),
    "too few bpe tokens": (["names", "--tokenizer", "bpe:10"], "bpe:N"),
    "wordpiece": (["names", "--tokenizer", "wordpiece"], "use byte, char or bpe:N"),
    "empty data": (["{tmp}/empty.txt"], "no documents"),
    "too small": (["{tmp}/small.txt"], "dataset too small"),
    "not utf-8": (["{tmp}/names.txt", "--lines"], "names.txt: not UTF-8 at byte 8"),
    "not tiny shakespeare": (["tinyshakespeare", "--from", "{tmp}/small.txt"], "sha256"),
    "abc without music21": (["abc"], "pip install music21"),
    "tinystories offline": (["tinystories"], "could not download TinyStories"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2(case, tmp_path):
    args, expected = BAD_INPUTS[case]
    if case == "abc without music21":
        import importlib.util

        if importlib.util.find_spec("music21") is not None:
            pytest.skip("music21 is installed")
    files = tmp_path / "files"
    files.mkdir()
    (files / "empty.txt").write_text("\n\n\n")
    (files / "small.txt").write_text("a few words\n\nand a few more\n")
    write_nonutf8(files)
    home = tmp_path / "home"
    # HF_HUB_OFFLINE makes the hub refuse at once, the way it fails without a network.
    result = prepare_cli(home, *[a.format(tmp=files) for a in args], HF_HUB_OFFLINE="1")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    leftovers = [p for p in home.rglob("*") if p.is_dir() and p.parent.name in ("data", "sealed")]
    assert leftovers == []


def test_non_utf8_works_with_byte_tokenizer(tmp_path):
    path = write_nonutf8(tmp_path)
    result = prepare_cli(tmp_path / "home", str(path), "--lines", "--tokenizer", "byte")
    assert result.returncode == 0, result.stderr
    assert "vocabulary 256" in result.stdout
