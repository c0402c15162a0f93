"""The leak probes at full length, from a secret seed, on the real names validation split.

Each planted model is exported through the harness's handover and scored by the sealed
evaluator's own `evaluate_run` (in this process, on the real data). The planted leaks are the
ones the old probe (64 tokens at cuts 0, T//3, T//2, T-2) could not see; `old_probe` replays
that probe to show it.
"""

import numpy as np
import pytest
import torch

import autolab.recipes.gpt as gpt
from autolab.data import prepare
from autolab.evaluation.causality import find_lookahead, probe_rows, random_cuts
from autolab.evaluation.sealed import evaluate_run
from autolab.harness.data import read_meta, read_tokens
from autolab.harness.handover import export_model, load_model


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    from tests_support import shared_data_dir

    source = tmp_path_factory.mktemp("src") / "names.txt"
    source.write_text((shared_data_dir() / "names.txt").read_text())
    home = tmp_path_factory.mktemp("home")
    data = prepare(str(source), "char", source_path=None, lines=True, home=str(home))
    return data, read_meta(data.data_dir)["vocab_size"]


class Bigram(torch.nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Embedding(vocab, vocab)
        self.peek = torch.nn.Embedding(vocab, vocab)  # used by the leaky subclasses

    def forward(self, idx):  # (B, T) -> (B, T, V)
        return self.table(idx)


class LeaksFarAhead(Bigram):
    """Position t reads token t + 40, only where t > 100: invisible in a 64-token probe."""

    def forward(self, idx):
        T = idx.shape[1]
        t = torch.arange(T)
        where = ((t > 100) & (t + 40 < T)).float().view(1, T, 1)
        return self.table(idx) + where * self.peek(torch.roll(idx, -40, dims=1))


class LeaksAwayFromCuts(Bigram):
    """Position t reads token t + 1 everywhere except at the old probe's cuts."""

    def forward(self, idx):
        T = idx.shape[1]
        where = torch.ones(1, T, 1)
        where[:, [0, T // 3, T // 2, T - 2]] = 0.0
        return self.table(idx) + where * self.peek(torch.roll(idx, -1, dims=1))


class ReadsTheNextRow(Bigram):
    """Row r reads row r + 1, which in evaluation continues it."""

    def forward(self, idx):
        return self.table(idx) + self.peek(torch.roll(idx, -1, dims=0))


def score(model, context_len: int, names, tmp_path, val_path=None) -> dict:
    data, vocab = names
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    export_model(model, context_len, vocab, run_dir)
    return evaluate_run(run_dir, data.data_dir, val_path or data.val_path, "cpu")


def old_probe(model, tokens: np.ndarray, vocab: int) -> str | None:
    """The probe before this one: the split's first 64 tokens, cut at 0, T//3, T//2 and T-2."""
    row = torch.from_numpy(np.asarray(tokens[:64], dtype=np.int64)).unsqueeze(0)
    base = model(row).float()
    generator = torch.Generator().manual_seed(0)
    for cut in (0, 64 // 3, 64 // 2, 64 - 2):
        if leak := find_lookahead(model, row, base, [cut], vocab, generator):
            return leak
    return None


@pytest.mark.parametrize(
    "planted, context_len",
    [(LeaksFarAhead, 256), (LeaksAwayFromCuts, 64)],
    ids=["far ahead", "away from fixed cuts"],
)
def test_leaks_the_old_probe_missed_are_invalid(names, tmp_path, planted, context_len):
    data, vocab = names
    result = score(planted(vocab), context_len, names, tmp_path)
    assert result["status"] == "invalid"
    assert result["reason"].startswith("non-causal: logits at position")
    model, _ = load_model(tmp_path / "run")
    meta = read_meta(data.data_dir)
    assert old_probe(model, read_tokens(data.val_path, meta), vocab) is None


def test_a_leak_is_caught_when_the_split_is_shorter_than_the_context(names, tmp_path):
    """200 validation tokens, a 256-token model: the probes still run at the full context."""
    data, vocab = names
    meta = read_meta(data.data_dir)
    short = tmp_path / "short.bin"
    np.asarray(read_tokens(data.val_path, meta)[:200]).tofile(short)
    result = score(LeaksFarAhead(vocab), 256, names, tmp_path, val_path=short)
    assert result["status"] == "invalid" and result["reason"].startswith("non-causal")
    result = score(Bigram(vocab), 256, names, tmp_path, val_path=short)
    assert result["status"] == "ok", result


def test_a_model_that_reads_the_next_row_is_invalid(names, tmp_path):
    _, vocab = names
    result = score(ReadsTheNextRow(vocab), 64, names, tmp_path)
    assert result["status"] == "invalid"
    assert result["reason"].startswith("reads other rows: logits changed")


def honest_gpt(vocab: int) -> torch.nn.Module:
    """The gpt recipe's model with random weights everywhere (its init zeroes the projections,
    which would leave attention out of the test)."""
    torch.manual_seed(0)
    model = gpt.GPT(vocab, gpt.DEPTH, 96, gpt.HEAD_DIM, gpt.SEQ_LEN, line_breaks=[1])
    with torch.no_grad():
        for weight in model.parameters():
            weight.normal_(0.0, 0.3)
    return model


@pytest.mark.parametrize("build", [Bigram, honest_gpt], ids=["bigram", "gpt recipe"])
def test_honest_models_pass(names, tmp_path, build):
    _, vocab = names
    result = score(build(vocab), gpt.SEQ_LEN, names, tmp_path)
    assert result["status"] == "ok", result
    assert 0 < result["val_bpb"] < 20


def test_probe_rows_and_cuts_come_from_the_secret(names):
    """Rows are consecutive chunks of the split, as scoring feeds them; where they start and
    where the cuts fall change with the seed; a short row is cut at every position."""
    data, _ = names
    tokens = np.asarray(read_tokens(data.val_path, read_meta(data.data_dir)), dtype=np.int64)
    starts, cuts = [], []
    for seed in (1, 2):
        generator = torch.Generator().manual_seed(seed)
        start, rows = probe_rows(tokens, 64, 16, generator)
        flat = rows.reshape(-1).numpy()
        aligned = range(0, len(tokens) - flat.size + 1, 64)  # where evaluate_bpb's chunks start
        found = [s for s in aligned if np.array_equal(tokens[s : s + flat.size], flat)]
        assert found == [start]
        starts.append(found)
        cuts.append(random_cuts(256, 64, generator))
    assert len(starts[0]) == len(starts[1]) == 1 and starts[0] != starts[1]
    assert cuts[0] != cuts[1] and all(len(set(c)) == 64 and max(c) <= 254 for c in cuts)
    assert set(random_cuts(64, 64, torch.Generator().manual_seed(3))) == set(range(63))
