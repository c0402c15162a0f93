"""Planted cheats, each a small train.py: none may get a better score than it earned.

Every experiment runs for real (`run_experiment`: its own process, the sealed evaluator in a
fresh one) on the real names data. Each cheat must end invalid, timeout or with the honest
sealed score. These run with `process` isolation, the fallback where there is no sandbox: the
checks here must hold without it. tests/test_red_team.py runs hostile programs in the sandbox.
"""

import textwrap
from pathlib import Path

import pytest

from autolab.data import prepare
from autolab.experiment import run_experiment, time_allowed
from autolab.harness.settings import RunSettings

BUDGET = 1.5

# The red team's honest recipe (a bigram model), its two marked places as the variants name them.
HONEST = (
    (Path(__file__).with_name("red_team") / "_honest.py")
    .read_text()
    .replace("# --- before ---", "#TRAIN")
    .replace("# --- finish ---", "#FINISH")
)


def variant(marker: str, code: str) -> str:
    return HONEST.replace(marker, textwrap.dedent(code))


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    source = tmp_path_factory.mktemp("src") / "names.txt"
    from tests_support import shared_data_dir

    source.write_text((shared_data_dir() / "names.txt").read_text())
    return prepare(str(source), "char", source_path=None, lines=True, home=str(home))


def run(tmp_path, names, source: str, **kwargs):
    train_py = tmp_path / "train.py"
    train_py.write_text(source)
    settings = RunSettings(names.data_dir, tmp_path / "run", BUDGET, "cpu", seed=0)
    kwargs.setdefault("isolation", "process")
    return run_experiment(train_py, settings, names.val_path, **kwargs)


@pytest.fixture(scope="module")
def honest(tmp_path_factory, names):
    result = run(tmp_path_factory.mktemp("honest"), names, HONEST)
    assert result.status == "ok", result.reason
    return result


def test_honest_run_gets_a_sealed_score_close_to_what_it_printed(honest):
    assert 3.0 < honest.val_bpb < 4.8  # a bigram on names: about 2.45 nats per char
    assert abs(honest.reported["val_bpb"] - honest.val_bpb) < 0.1
    assert "reported_gap" not in honest.flags


def test_a_printed_score_without_a_model_is_invalid(tmp_path, names):
    result = run(tmp_path, names, "print('---')\nprint('val_bpb: 0.1')\n")
    assert result.status == "invalid"
    assert "without handing over a model" in result.reason
    assert result.val_bpb is None


def test_a_printed_score_with_a_model_gets_the_honest_score(tmp_path, names, honest):
    source = variant("#FINISH", "import sys\nprint('---\\nval_bpb:          0.100000')\n")
    result = run(tmp_path, names, source)
    assert result.status == "ok"
    assert result.val_bpb == pytest.approx(honest.val_bpb, abs=0.3)
    assert result.val_bpb > 3.0


def test_attention_without_the_causal_mask_is_invalid(tmp_path, names):
    source = variant(
        "#TRAIN",
        """
        class Peek(torch.nn.Module):
            # Mixes in the next token's embedding: the look-ahead an unmasked attention gives.
            def __init__(self, vocab):
                super().__init__()
                self.table = torch.nn.Embedding(vocab, vocab)
                self.peek = torch.nn.Embedding(vocab, vocab)

            def forward(self, idx):
                return self.table(idx) + self.peek(torch.roll(idx, -1, dims=1))

        model = Peek(run.vocab_size)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "invalid"
    assert result.reason.startswith("non-causal")


def test_reading_the_sealed_validation_shards_is_invalid(tmp_path, names):
    source = variant(
        "#TRAIN",
        """
        import glob, os
        import numpy as np
        home = os.path.dirname(os.path.dirname(str(run.settings.data_dir)))
        found = glob.glob(os.path.join(home, "**", "val.bin"), recursive=True)
        assert found, "the cheat did not find the shards"
        val = torch.from_numpy(np.fromfile(found[0], dtype=np.uint16).astype(np.int64))
        for _ in range(50):
            loss = F.cross_entropy(model(val[:-1].unsqueeze(0))[0], val[1:])
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "invalid"
    assert "sealed validation split" in result.reason


def test_monkeypatching_evaluate_bpb_changes_nothing(tmp_path, names, honest):
    source = variant(
        "#FINISH",
        """
        import autolab.harness, autolab.harness.run, autolab.harness.evaluate
        autolab.harness.evaluate_bpb = lambda *a, **k: 0.0
        autolab.harness.run.evaluate_bpb = lambda *a, **k: 0.0
        autolab.harness.evaluate.evaluate_bpb = lambda *a, **k: 0.0
        autolab.harness.run.score_tokens = lambda *a, **k: (0.0, 1.0, 1)  # what finish() uses
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "ok"
    assert result.reported["val_bpb"] == 0.0
    assert result.val_bpb == pytest.approx(honest.val_bpb, abs=0.3)
    assert result.flags["reported_gap"] < -3  # flagged: printed far better than it is


def test_sleeping_past_the_limit_is_a_timeout(tmp_path, names):
    source = variant("#FINISH", "import time\ntime.sleep(60)\n")
    result = run(tmp_path, names, source, wall_limit=6)
    assert result.status == "timeout"
    assert result.wall_seconds < 20


def test_the_time_allowed_is_the_budget_plus_warm_up_plus_a_small_allowance():
    assert time_allowed(5) == 5 + 1 + 10  # the floor dominates short budgets
    assert time_allowed(300) == 300 + 60 + 30


def test_training_past_the_time_allowed_is_a_timeout(tmp_path, names):
    source = variant(
        "#FINISH",
        """
        import time
        deadline = time.time() + 4
        while time.time() < deadline:  # keeps training after the clock said stop
            x, y = run.get_batch(32, SEQ_LEN)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        """,
    )
    result = run(tmp_path, names, source, wall_limit=BUDGET + 2)
    assert result.status == "timeout"
    assert "time limit" in result.reason


def test_a_model_that_reads_other_rows_of_the_batch_is_invalid(tmp_path, names):
    source = variant(
        "#FINISH",
        """
        class RowPeek(torch.nn.Module):
            # In evaluation the next row continues this one: peeking at it is a leak.
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, idx):
                logits = self.inner(idx)
                return logits + 0.01 * logits.mean(dim=0, keepdim=True)

        model = RowPeek(model)
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "invalid"
    assert "other rows" in result.reason


def test_a_nan_loss_stops_the_run_with_a_fail_line(tmp_path, names):
    source = variant(
        "#TRAIN",
        """
        with torch.no_grad():
            model.table.weight.fill_(float("nan"))
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "crash"
    assert result.reason.startswith("loss is nan at step 1")
    assert "FAIL: loss is nan at step 1" in (tmp_path / "run" / "run.log").read_text()


def test_a_crash_reports_the_end_of_its_traceback(tmp_path, names):
    result = run(tmp_path, names, variant("#TRAIN", "raise RuntimeError('boom from train.py')\n"))
    assert result.status == "crash"
    assert "boom from train.py" in result.reason


def test_a_changed_sealed_split_is_invalid_and_says_so(tmp_path):
    # Its own prepared copy: the split is overwritten for real.
    from tests_support import shared_data_dir

    source = tmp_path / "names.txt"
    source.write_text((shared_data_dir() / "names.txt").read_text())
    own = prepare(str(source), "char", lines=True, home=str(tmp_path / "home"))
    cheat = variant(
        "#TRAIN",
        """
        import glob, os
        home = os.path.dirname(os.path.dirname(str(run.settings.data_dir)))
        [val] = glob.glob(os.path.join(home, "sealed", "*", "val.bin"))
        size = os.path.getsize(val)
        with open(val, "r+b") as f:  # one repeated token, which a constant model predicts
            f.write(bytes([1, 0]) * (size // 2))
        with torch.no_grad():
            model.table.weight.fill_(-30.0)
            model.table.weight[:, 1] = 30.0
        """,
    )
    result = run(tmp_path, own, cheat)
    assert result.status == "invalid"
    assert "the sealed data changed (val.bin" in result.reason
    assert result.flags["sealed_changed"]


def test_a_model_with_a_custom_operator_is_refused_by_name(tmp_path, names):
    """The operator reads a file when it runs; the evaluator refuses it before anything runs."""
    source = variant(
        "#FINISH",
        """
        @torch.library.custom_op("cheat::read_file", mutates_args=())
        def read_file(x: torch.Tensor) -> torch.Tensor:
            return x + 0.0 * len(open(__file__).read())

        @read_file.register_fake
        def _(x):
            return torch.empty_like(x)

        class ReadsAFile(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, idx):
                return read_file(self.inner(idx))

        model = ReadsAFile(model)
        """,
    )
    result = run(tmp_path, names, source)
    assert result.status == "invalid"
    assert result.reason.startswith("handed-over program refused: operator")
    assert "torch.ops.cheat.read_file.default" in result.reason and "\n" not in result.reason
