"""bench/gpu.py's arithmetic and its throughput step, run on a CPU at a tiny shape.

The GPU figures themselves need a GPU; what can run here does, so the script is not first run
on the day a GPU is at hand.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests_support import load_bench_script

from autolab.recipes import gpt

REPO = Path(__file__).resolve().parents[1]
TINY = dict(depth=2, dim=32, head_dim=16, seq_len=8, vocab=11, tokens_per_step=64)


def test_flops_per_token_is_6_non_embedding_params_plus_attention():
    bench = load_bench_script("gpu")
    model = gpt.GPT(11, 2, 32, 16, 8)
    blocks = 2 * (4 + 2 * gpt.MLP_RATIO) * 32 * 32  # q, k, v, proj; MLP in and out
    head = 32 * 11
    assert bench.flops_per_token(model, 2, 32, 8) == 6 * (blocks + head) + 12 * 2 * 32 * 8


def test_throughput_step_runs_and_accumulates_to_the_tokens_per_step():
    bench = load_bench_script("gpu")
    torch.set_num_threads(1)
    result = bench.throughput("cpu", TINY, micro_batch=2, steps=1, compile_model=False)
    assert result["accumulation"] == 64 // (2 * 8)
    assert result["tokens_per_sec"] > 0 and result["mfu_percent"] >= 0
    assert result["peak_memory_gb"] is None  # measured on CUDA only


def test_throughput_variants_change_one_thing_each_and_a_bad_one_is_its_error():
    bench = load_bench_script("gpu")
    torch.set_num_threads(1)
    variants = [{"mlp_ratio": 1}, {"fused_loss": False}, {"attention": "MATH"},
                {"micro_batch": 4}, {"attention": "NO_SUCH_BACKEND"}]  # fmt: skip
    args = argparse.Namespace(shape=TINY, micro_batch=2, steps=1, throughput_variants=variants)
    results = bench.throughput_variants("cpu", args, compile_model=False)
    assert [r["variant"] for r in results] == variants
    narrow, unfused, math_attention, larger, bad = results
    headline = bench.throughput("cpu", TINY, micro_batch=2, steps=1, compile_model=False)
    assert narrow["shape"] == {**TINY, "mlp_ratio": 1}
    assert narrow["flops_per_token"] < headline["flops_per_token"]  # the MLP is half as wide
    assert unfused["fused_loss"] is False and headline["fused_loss"] is True
    assert math_attention["attention"] == "MATH" and headline["attention"] == "torch's choice"
    assert larger["micro_batch"] == 4 and larger["accumulation"] == 64 // (4 * 8)
    assert bad["error"].startswith("AttributeError") and "NO_SUCH_BACKEND" in bad["error"]


def test_the_recipe_loss_compiled_or_not_is_the_same_as_computed_outside():
    """gpt.training_loss is the cross-entropy of the model's logits, as the recipe computed it
    before the loss went inside the compiled function."""
    torch.manual_seed(0)
    model = gpt.GPT(11, 2, 32, 16, 8)
    x, y = torch.randint(0, 11, (2, 3, 8))
    expected = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
    assert torch.equal(gpt.training_loss(model, x, y), expected)


def test_the_script_prints_one_json_object():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "cpu", "--skip-tests",
         "--skip-runs", "--steps", "1", "--micro-batch", "2", "--shape", json.dumps(TINY),
         "--throughput-variants", '[{"mlp_ratio": 1}]'],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["device"] == "cpu" and report["throughput"]["shape"] == TINY
    assert report["throughput_variants"][0]["shape"] == {**TINY, "mlp_ratio": 1}


def test_a_part_that_breaks_is_reported_as_its_error_and_written_to_out(tmp_path):
    """On a lent GPU one broken part must not cost the others: its error is the part's value,
    and --out holds the report so far."""
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "cpu", "--skip-tests",
         "--skip-runs", "--shape", '{"depth": 2}', "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["throughput"]["error"].startswith("KeyError")
    assert json.loads(out.read_text()) == report


def test_the_cuda_tests_are_collected_from_the_files_that_mark_them_only():
    files = load_bench_script("gpu").cuda_test_files()
    assert "tests/test_zygote.py" in files and "tests/test_recipes.py" in files
    assert "tests/test_dashboard_api.py" not in files  # needs packages a GPU image may lack
    for name in files:
        assert "mark.cuda" in (REPO / name).read_text()


def test_the_overhead_per_experiment_leaves_out_what_the_command_pays_once():
    summary = {"training_seconds": 10.0, "total_seconds": 12.5, "num_steps": 40,
               "startup_seconds": 1.5, "handover_seconds": 0.75}  # fmt: skip
    assert load_bench_script("gpu").overheads(summary, wall=19.0) == {
        "training_seconds": 10.0, "num_steps": 40, "overhead_s": 2.5, "startup_s": 1.5,
        "handover_s": 0.75, "command_overhead_s": 9.0,
    }  # fmt: skip


@pytest.mark.slow
def test_the_training_runs_report_their_overheads_on_a_cpu(tmp_path, shared_data):
    """The parts that train through `autolab train`, as a smoke run on a CPU at a 3 s budget
    (the shape run cannot train there in time: it is reported as a timeout)."""
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "cpu", "--skip-tests",
         "--data", str(shared_data), "--budget", "3", "--shape-budget", "1", "--steps", "1",
         "--micro-batch", "2", "--shape", json.dumps(TINY), "--throughput-variants", "[]",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    for part in (report["small"], report["small_warm"], *report["small_variants"]):
        assert 0 < part["overhead_s"] < part["command_overhead_s"], part
        assert part["startup_s"] is not None and part["val_nats_per_char"] > 0
    assert "timeout" in report["overhead_at_shape"]["error"]
