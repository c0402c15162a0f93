"""The sealed score starts while train.py still exports its sampler (autolab.evaluation.early).

Real runs in the real sandbox on the real names data: the runner takes the scored program out
as soon as it is there, and that copy is the model of record, whatever the experiment writes
under its name afterwards. A link or a crash after the handover gets no score.
"""

import os
import textwrap
from pathlib import Path

import pytest

from autolab import sandbox
from autolab.data import prepare
from autolab.data.sealed_store import recorded_hashes
from autolab.evaluation.early import _copy_regular
from autolab.evaluation.launcher import SealedEvaluator
from autolab.experiment import run_experiment
from autolab.harness.settings import RunSettings

needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_unavailable() is not None and os.environ.get("CI") != "true",
    reason="no sandbox here",
)
HONEST = (Path(__file__).with_name("red_team") / "_honest.py").read_text()
HAND_OVER = """
from autolab.harness.handover import export_model
export_model(model, SEQ_LEN, run.vocab_size, run.settings.run_dir)
"""


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    from tests_support import shared_data_dir

    source = tmp_path_factory.mktemp("src") / "names.txt"
    source.write_text((shared_data_dir() / "names.txt").read_text())
    home = tmp_path_factory.mktemp("home")
    return prepare(str(source), "char", source_path=None, lines=True, home=str(home))


def run_with_finish(tmp_path, names, finish: str):
    train_py = tmp_path / "train.py"
    train_py.write_text(HONEST.replace("# --- finish ---", textwrap.dedent(finish)))
    settings = RunSettings(names.data_dir, tmp_path / "run", 1.5, "cpu", seed=0)
    return run_experiment(train_py, settings, names.val_path, isolation="sandbox")


@needs_sandbox
def test_the_program_taken_first_is_scored_and_kept_whatever_replaces_it(tmp_path, names):
    # The trained bigram is handed over; then, while the runner scores it, its table is zeroed
    # (every next character equally likely, log2(27) = 4.75 bits) and handed over again.
    result = run_with_finish(tmp_path, names, HAND_OVER + """
import shutil
shutil.copyfile(run.settings.run_dir / "model.pt2", run.settings.run_dir / "first.pt2")
time.sleep(3)
with torch.no_grad():
    model.table.weight.zero_()
""")  # fmt: skip
    assert result.status == "ok", result.reason
    assert result.val_bpb < 4.2  # the trained table's score: scored before it was replaced
    assert result.reported["val_bpb"] > 4.5  # what the run itself measured last
    run_dir = tmp_path / "run"
    assert (run_dir / "model.pt2").read_bytes() == (run_dir / "first.pt2").read_bytes()


@needs_sandbox
def test_a_link_handed_over_as_the_model_is_not_followed(tmp_path, names):
    result = run_with_finish(tmp_path, names, """
os.symlink("/etc/hostname", run.settings.run_dir / "model.pt2")
time.sleep(1)
sys.exit(0)
""")  # fmt: skip
    assert result.status == "invalid"
    assert "without handing over a model" in result.reason
    assert not (tmp_path / "run" / "model.pt2").exists()


@needs_sandbox
def test_a_crash_after_the_handover_gets_no_score(tmp_path, names):
    result = run_with_finish(tmp_path, names, HAND_OVER + "time.sleep(2)\nsys.exit(3)\n")
    assert result.status == "crash"
    assert result.val_bpb is None


def test_a_cancelled_evaluator_forks_nothing(tmp_path, names):
    class NoZygote:
        def spawn(self, *args, **kwargs):
            raise AssertionError("a cancelled evaluator must not fork")

    settings = RunSettings(names.data_dir, tmp_path / "run", 1.0, "cpu", seed=0)
    hashes = recorded_hashes(names.val_path.parent)
    evaluator = SealedEvaluator(settings, names.val_path, NoZygote(), hashes)
    evaluator.cancel()
    verdict = evaluator.score(timeout=5)
    assert verdict["status"] == "invalid" and "cancelled" in verdict["reason"]


def test_only_a_regular_file_is_copied(tmp_path):
    (tmp_path / "file").write_bytes(b"weights")
    os.symlink(tmp_path / "file", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    assert _copy_regular(tmp_path / "file", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"weights"
    for name in ("link", "fifo", "missing"):
        assert not _copy_regular(tmp_path / name, tmp_path / f"{name}-copy")
        assert not (tmp_path / f"{name}-copy").exists()
        assert not (tmp_path / f"{name}-copy.partial").exists()
