"""The learning-rate range test: the harness's sweep, the suggestion, and the command."""

import json
import math
import os
import subprocess
import sys

import pytest

from autolab.errors import UsageError
from autolab.harness.lr_range import MAX_SCALE, MIN_SCALE, LRRangeTest
from autolab.lr_find import read_sweep


def test_the_multiplier_rises_exponentially_and_divergence_ends_the_sweep():
    test = LRRangeTest(steps=101)
    assert test.scale(0) == pytest.approx(MIN_SCALE)
    assert test.scale(100) == pytest.approx(MAX_SCALE)
    assert test.scale(50) == pytest.approx(math.sqrt(MIN_SCALE * MAX_SCALE))
    for loss in (3.0, 2.5, 2.0):
        test.observe(loss)
    assert not test.done(3)
    test.observe(9.0)
    assert test.done(4)


def test_the_suggestion_is_where_the_loss_falls_fastest(tmp_path):
    # A loss that falls fastest around a multiplier of 0.1, bottoms out at 1, then diverges.
    lines = []
    for i in range(200):
        scale = MIN_SCALE * (MAX_SCALE / MIN_SCALE) ** (i / 199)
        x = math.log10(scale)
        loss = 3 - math.tanh(2 * (x + 1)) + (max(0.0, x) ** 2) * 3
        lines.append(json.dumps({"step": i + 1, "loss": loss, "lr_scale": scale}))
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    sweep = read_sweep(tmp_path / "metrics.jsonl")
    assert 0.03 < sweep.suggested < 0.3
    assert 0.3 < sweep.lowest < 3


def test_a_recipe_that_ignores_lr_scale_is_told(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    with pytest.raises(UsageError, match="run.lr_scale"):
        read_sweep(tmp_path / "metrics.jsonl")


def test_lr_find_command_on_the_mlp_recipe(tmp_path):
    env = {**os.environ, "AUTOLAB_HOME": str(tmp_path / "home")}

    def autolab(*args):
        return subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                              text=True, env=env, timeout=300)  # fmt: skip

    workspace = tmp_path / "ws"
    assert autolab("init", str(workspace), "--recipe", "mlp").returncode == 0
    done = autolab(
        "lr-find", "-C", str(workspace), "--steps", "80", "--out", str(tmp_path / "lr.png")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LEARNING_RATE" in done.stdout and "suggested multiplier" in done.stdout
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (workspace / "program.md").read_text() == ""
    assert autolab("lr-find", "-C", str(workspace), "--steps", "5").returncode == 2
