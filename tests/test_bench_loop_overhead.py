"""bench/loop_overhead.py: the fixture's constants are written into train.py or refused, and
one round of real sessions from two trees gives each tree its overhead and its two shares."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import load_bench_script

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "loop_overhead.py"


def test_constants_are_set_in_place_and_an_unknown_one_is_refused(tmp_path):
    bench = load_bench_script("loop_overhead")
    train_py = tmp_path / "train.py"
    train_py.write_text("DEPTH = 2  # blocks\nASPECT_RATIO = 64\nx = DEPTH\n")
    bench.set_constants(train_py, ["DEPTH=4", "ASPECT_RATIO=8"])
    assert train_py.read_text() == "DEPTH = 4  # blocks\nASPECT_RATIO = 8\nx = DEPTH\n"
    with pytest.raises(SystemExit, match="train.py has no constant WIDTH"):
        bench.set_constants(train_py, ["WIDTH=3"])


def test_a_round_of_sessions_from_two_trees(shared_data):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--baseline", "HEAD", "--rounds", "1", "--experiments", "1",
         "--budget", "1", "--set", "DEPTH=1", "--data", str(shared_data / "names.txt")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.splitlines()[-1])
    assert set(rows) == {"this tree", "HEAD"}
    for (session,) in rows.values():
        assert session["runs"] >= 1
        assert session["overhead"] > 0 and session["train.py"] > 0 and session["autolab"] > 0
        shares = session["train.py"] + session["autolab"]
        assert shares == pytest.approx(session["overhead"], abs=0.5)  # medians of each, nearly


def test_data_that_is_not_a_file_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--baseline", "HEAD", "--data", str(tmp_path / "none.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "is not a file" in done.stderr
