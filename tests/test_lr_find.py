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


def write_sweep(path, loss_at) -> None:
    lines = []
    for i in range(300):
        scale = MIN_SCALE * (MAX_SCALE / MIN_SCALE) ** (i / 299)
        lines.append(json.dumps({"step": i + 1, "loss": loss_at(scale), "lr_scale": scale}))
    path.write_text("\n".join(lines))


def names_like(scale: float) -> float:
    """The shape of the gpt recipe's sweep on names: a steep early fall around x0.02 (easy
    progress), a slow descent to a minimum near x2, then divergence."""
    x = math.log10(scale)
    early = 0.8 * (1 - math.tanh(2.5 * (x + 1.7))) / 2
    slow = 0.12 * (0.3 - x)
    return 2.2 + early + slow + 2.0 * max(0.0, x - 0.3) ** 2


def test_the_suggestion_is_half_the_lowest_point_on_the_descent(tmp_path):
    write_sweep(tmp_path / "metrics.jsonl", names_like)
    sweep = read_sweep(tmp_path / "metrics.jsonl")
    assert 0.008 < sweep.steepest < 0.05  # the early fall, which is not suggested
    assert 1.5 < sweep.lowest < 4
    assert sweep.suggested == pytest.approx(sweep.lowest / 2)
    # On the descending part: below the minimum, and lower than at the steepest fall.
    at = min(range(300), key=lambda i: abs(sweep.scales[i] - sweep.suggested))
    steep = sweep.scales.index(sweep.steepest)
    assert sweep.smoothed[at] < sweep.smoothed[steep]
    assert all(a >= b for a, b in zip(sweep.smoothed[steep:at], sweep.smoothed[steep + 1:at + 1],
                                      strict=True))  # fmt: skip


def test_the_plot_marks_the_suggestion(tmp_path):
    from autolab.lr_find import sweep_figure

    write_sweep(tmp_path / "metrics.jsonl", names_like)
    sweep = read_sweep(tmp_path / "metrics.jsonl")
    fig = sweep_figure(sweep, "t")
    lines = {line.get_label(): line.get_xdata()[0] for line in fig.axes[0].get_lines()
             if line.get_label().startswith(("suggested", "lowest"))}  # fmt: skip
    assert lines == {f"suggested ×{sweep.suggested:.3g} (half the lowest)": sweep.suggested,
                     f"lowest loss ×{sweep.lowest:.3g}": sweep.lowest}  # fmt: skip


def test_a_loss_that_never_falls_is_told(tmp_path):
    write_sweep(tmp_path / "metrics.jsonl", lambda scale: 3 + scale)
    with pytest.raises(UsageError, match="the loss never fell"):
        read_sweep(tmp_path / "metrics.jsonl")


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
    assert autolab("init", str(workspace), "--recipe", "mlp", "--budget", "1s").returncode == 0
    trained = autolab("train", "-C", str(workspace))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    last_run = (workspace / ".autolab" / "last_run").read_text()
    done = autolab(
        "lr-find", "-C", str(workspace), "--steps", "80", "--out", str(tmp_path / "lr.png")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LEARNING_RATE" in done.stdout and "suggested multiplier" in done.stdout
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (workspace / "program.md").read_text() == ""
    assert autolab("lr-find", "-C", str(workspace), "--steps", "5").returncode == 2
    # The sweep is its own kind of run: the workspace's last run is still the trained one,
    # and `sample` samples it.
    assert (workspace / ".autolab" / "last_run").read_text() == last_run
    assert [p.name for p in (workspace / ".autolab" / "runs").iterdir()] == [
        os.path.basename(last_run)
    ]
    sampled = autolab("sample", "-C", str(workspace), "-n", "3")
    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    assert len(sampled.stdout.strip().splitlines()) >= 3
