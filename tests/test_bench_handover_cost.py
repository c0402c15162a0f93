"""bench/handover_cost.py: the recipe's model as main() builds it, every phase timed, and a
usage error for a data path that is not a file."""

import json
import subprocess
import sys
from pathlib import Path

from tests_support import load_bench_script

from autolab.recipes import gpt

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "handover_cost.py"
SMALLEST = {"DEPTH": 1, "ASPECT_RATIO": 8, "HEAD_DIM": 8}


def test_the_model_is_the_recipes_at_the_size_asked_for():
    bench = load_bench_script("handover_cost")
    model, context_len, seq_len = bench.build_model({"DEPTH": 3, "ASPECT_RATIO": 8}, 30, [0])
    assert (len(model.blocks), seq_len, context_len) == (3, gpt.SEQ_LEN, 8 * gpt.SEQ_LEN)
    assert model.wte.weight.shape == (30, gpt.HEAD_DIM)  # 3 x 8 = 24, rounded up to a head
    default, _, _ = bench.build_model({}, 30, [0])
    assert default.wte.weight.shape == (30, gpt.DEPTH * gpt.ASPECT_RATIO)


def test_every_phase_is_timed_on_real_data(shared_data):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--data", str(shared_data / "names.txt"),
         "--sizes", json.dumps([SMALLEST]), "--repeats", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout.splitlines()[-1])
    assert row["size"] == SMALLEST
    for phase in ("dev estimate", "export", "load", "probes", "val score"):
        assert row[phase] > 0, phase
    assert 0 <= row["of which sampler"] <= row["export"]


def test_a_data_path_that_is_not_a_file_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--data", str(tmp_path / "nope.txt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "is not a file" in done.stderr
