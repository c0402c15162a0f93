"""Output for logs and pipes: progress lines in the `events` format, samples kept apart, a
token table for surprisal, descriptions that do not repeat their kind."""

import os
import re
import subprocess
import sys

from autolab.commands.results import describe
from autolab.sampling_launcher import format_samples
from autolab.views.progress import ProgressLines


def test_progress_lines_every_interval_and_the_last():
    now = [0.0]
    lines: list[str] = []
    progress = ProgressLines(10, write=lines.append, clock=lambda: now[0])
    for second in range(0, 31):
        now[0] = float(second)
        progress({"step": second, "progress": second / 30, "loss": 2.0, "lr": 3e-4,
                  "tokens_per_sec": 12_345.0})  # fmt: skip
    steps = [re.search(r"step (\d+)", line).group(1) for line in lines]
    assert steps == ["0", "10", "20", "30"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d  step 10 \(33%\)  loss 2\.000  lr 3\.0e-4  12\.3k tok/s",
                        lines[1])  # fmt: skip


def test_samples_are_kept_apart():
    assert format_samples(["emma", "olivia\n"]) == "emma\nolivia"
    text = format_samples(["To be,\nor not", "that is\n\nthe question"])
    assert text == "── sample 1/2 ──\nTo be,\nor not\n── sample 2/2 ──\nthat is\n\nthe question"


def test_descriptions_do_not_repeat_their_kind():
    from types import SimpleNamespace

    base = SimpleNamespace(kind="baseline", description="baseline (seed 0)", rechecks=None)
    again = SimpleNamespace(kind="recheck", description="re-check of exp 5 (seed 1005)",
                            rechecks=5)  # fmt: skip
    assert describe(base) == "[dim]baseline (seed 0)[/]"
    assert describe(again) == "[dim]re-check of exp 5 (seed 1005)[/]"


def test_train_and_inspect_piped(tmp_path):
    env = {**os.environ, "AUTOLAB_HOME": str(tmp_path / "home")}

    def autolab(*args):
        return subprocess.run([sys.executable, "-m", "autolab", *args, "-C", str(tmp_path / "ws")],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip

    done = subprocess.run([sys.executable, "-m", "autolab", "init", str(tmp_path / "ws"),
                           "--recipe", "mlp", "--budget", "2s"], env=env)  # fmt: skip
    assert done.returncode == 0
    done = autolab("train", "--progress-interval", "0.5", "--samples", "3")
    assert done.returncode == 0, done.stderr
    steps = re.findall(r"^\d\d:\d\d:\d\d  step \d+ \(\d+%\)  loss \d", done.stdout, re.M)
    assert len(steps) >= 2, done.stdout
    assert "-0s" not in done.stdout
    done = autolab("inspect", "--text", "emma", "--surprisal", "-e", "last")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "bits per byte" in lines[0]
    assert lines[1] == "#\ttoken\tbits"
    assert [line.split("\t")[1] for line in lines[2:]] == ["e", "m", "m", "a"]
    assert all(re.fullmatch(r"-|\d+\.\d{3}", line.split("\t")[2]) for line in lines[2:])
