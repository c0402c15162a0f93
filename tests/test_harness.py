"""The harness's pieces against hand computations: summary format, bits per byte, clock."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autolab.harness.clock import MAX_EXCLUDED_FRACTION, TrainingClock
from autolab.harness.evaluate import chunk_starts, evaluate_bpb, score_tokens
from autolab.summary import format_summary, parse_summary

SUMMARY = {
    "val_bpb": 1.2345671,
    "training_seconds": 30.06,
    "total_seconds": 33.44,
    "peak_memory_mb": 812.34,
    "tokens_per_sec": 41230.2,
    "mfu_percent": 38.2,
    "num_steps": 953,
    "num_params_M": 0.81,
    "device": "cpu (2 threads)",
}


def test_summary_block_format_is_pinned():
    assert format_summary(SUMMARY) == (
        "---\n"
        "val_bpb:          1.234567\n"
        "training_seconds: 30.1\n"
        "total_seconds:    33.4\n"
        "peak_memory_mb:   812.3\n"
        "tokens_per_sec:   41230\n"
        "mfu_percent:      38.20\n"
        "num_steps:        953\n"
        "num_params_M:     0.810\n"
        "device:           cpu (2 threads)"
    )


def test_parameter_count_keeps_three_significant_figures():
    """A 30k-parameter MLP once printed `num_params_M: 0.0`; the value still parses as millions."""
    for millions, text in ((0.030212, "0.0302"), (0.81, "0.810"), (50.31, "50.3"),
                           (1234.5, "1234.5"), (0.0000302, "0.0000302")):  # fmt: skip
        block = format_summary({"num_params_M": millions})
        assert block.splitlines()[1] == f"num_params_M:     {text}"
        assert parse_summary(block)["num_params_M"] == pytest.approx(millions, rel=5e-3)


def test_summary_leaves_out_missing_values_and_appends_extra_keys():
    text = format_summary({**SUMMARY, "mfu_percent": None, "reported_val_bpb": 1.3})
    assert "mfu_percent" not in text
    assert text.splitlines()[-1] == "reported_val_bpb: 1.300000"


def test_parse_summary_reads_the_last_block_of_a_log():
    log = "step 1 | loss 3.2\n---\nval_bpb: 9.0\n\nmore output\n" + format_summary(SUMMARY)
    values = parse_summary(log + "\n")
    assert values["val_bpb"] == pytest.approx(1.234567)
    assert values["num_steps"] == 953
    assert values["device"] == "cpu (2 threads)"
    assert parse_summary("no block here") == {}


class FixedLogits(torch.nn.Module):
    """Logits that depend only on the previous token: a bigram table."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, idx):
        return self.table[idx]


def test_bits_per_byte_matches_a_hand_computation():
    vocab, bytes_per_token = 3, np.array([1, 2, 3], dtype=np.int32)
    table = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 1.0, 3.0]])
    tokens = np.array([0, 1, 2, 2, 0, 1, 1, 0, 2], dtype=np.uint16)
    nats = 0.0
    nbytes = 0
    for prev, target in zip(tokens[:-1], tokens[1:], strict=True):
        probs = torch.softmax(table[int(prev)], dim=-1)
        nats -= math.log(probs[int(target)].item())
        nbytes += bytes_per_token[target]
    expected = nats / (math.log(2) * nbytes)
    got = evaluate_bpb(FixedLogits(table), tokens, bytes_per_token, seq_len=4, batch_size=1)
    assert got == pytest.approx(expected, rel=1e-9)
    total, _, targets = score_tokens(FixedLogits(table), tokens, bytes_per_token, seq_len=4)
    assert targets == len(tokens) - 1 and total / targets == pytest.approx(nats / targets)
    assert vocab == table.shape[1]


def test_bits_per_byte_does_not_depend_on_the_batch_size():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(11, 11, generator=generator)
    tokens = np.random.default_rng(0).integers(0, 11, size=1000).astype(np.uint16)
    nbytes = np.ones(11, dtype=np.int32)
    scores = [
        evaluate_bpb(FixedLogits(table), tokens, nbytes, seq_len=64, batch_size=b)
        for b in (1, 3, 16)
    ]
    assert max(scores) - min(scores) < 1e-9


class PrefixMean(torch.nn.Module):
    """A causal model whose logits depend on the whole prefix (the mean of its one-hots), each
    call counted."""

    def __init__(self, vocab: int, generator):
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=generator)
        self.mix = torch.randn(vocab, vocab, generator=generator)
        self.calls = 0

    def forward(self, idx):
        self.calls += 1
        seen = F.one_hot(idx, self.table.shape[0]).float().cumsum(1)
        mean = seen / torch.arange(1, idx.shape[1] + 1).view(1, -1, 1)
        return self.table[idx] + mean @ self.mix


def test_the_shorter_last_chunk_rides_in_the_last_batch():
    generator = torch.Generator().manual_seed(0)
    tokens = np.random.default_rng(0).integers(0, 11, size=1000).astype(np.uint16)
    nbytes = np.ones(11, dtype=np.int32)
    # 999 targets in chunks of 64: 15 full chunks and one of 39, one call of 16 rows.
    model = PrefixMean(11, generator)
    together = evaluate_bpb(model, tokens, nbytes, seq_len=64, batch_size=16)
    assert model.calls == 1
    one_by_one = evaluate_bpb(model, tokens, nbytes, seq_len=64, batch_size=1)
    assert model.calls == 1 + 16
    assert together == pytest.approx(one_by_one, abs=1e-9)
    # Its padding is not scored: as many targets as the chunks hold.
    assert score_tokens(model, tokens, nbytes, seq_len=64)[2] == len(tokens) - 1


def test_chunks_whose_logits_are_known_are_scored_without_a_call():
    """The sealed evaluator's probe batch is four consecutive full chunks here: their logits,
    from one call of their own, are scored as they are."""
    generator = torch.Generator().manual_seed(1)
    tokens = np.random.default_rng(1).integers(0, 11, size=1000).astype(np.uint16)
    nbytes = np.random.default_rng(2).integers(1, 4, size=11).astype(np.int32)
    model = PrefixMean(11, generator)
    plain = evaluate_bpb(model, tokens, nbytes, seq_len=64, batch_size=4)
    assert model.calls == 4  # 16 chunks
    starts = [64 * i for i in range(5, 9)]
    rows = torch.from_numpy(np.stack([tokens[s : s + 64] for s in starts]).astype(np.int64))
    known = dict(zip(starts, model(rows), strict=True))
    model.calls = 0
    reused = evaluate_bpb(model, tokens, nbytes, seq_len=64, batch_size=4, known=known)
    assert model.calls == 3
    assert reused == pytest.approx(plain, abs=1e-9)
    # Known logits are believed, not recomputed: wrong ones change the score.
    wrong = {s: torch.zeros_like(logits) for s, logits in known.items()}
    assert evaluate_bpb(model, tokens, nbytes, seq_len=64, known=wrong) != pytest.approx(plain)


def test_every_target_token_is_scored_exactly_once():
    for n_tokens, seq_len in [(10, 4), (9, 4), (5, 8), (100, 7)]:
        covered = []
        for start, length in chunk_starts(n_tokens, seq_len):
            covered.extend(range(start + 1, start + 1 + length))
        assert covered == list(range(1, n_tokens))


def test_clock_leaves_out_at_most_the_first_steps_and_a_fifth_of_the_budget(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("autolab.harness.clock.time.perf_counter", lambda: now[0])
    clock = TrainingClock(budget_seconds=10.0, excluded_steps=3)
    for step_seconds in [1.5, 1.5, 1.5, 1.0, 1.0]:  # three slow warm-up steps, two normal ones
        now[0] += step_seconds
        clock.tick()
    # 2 s of the warm-up may be left out (20% of 10 s); the other 2.5 s count.
    assert clock.excluded_seconds == pytest.approx(MAX_EXCLUDED_FRACTION * 10.0)
    assert clock.training_seconds == pytest.approx(6.5 - 2.0)
    assert not clock.time_up
    now[0] += 6.0
    clock.tick()
    assert clock.time_up and clock.progress == 1.0


def test_clock_refuses_to_leave_out_more_than_ten_steps():
    with pytest.raises(ValueError):
        TrainingClock(10.0, excluded_steps=11)


def test_clock_leaves_out_the_time_the_harness_measured_dev_loss(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("autolab.harness.clock.time.perf_counter", lambda: now[0])
    clock = TrainingClock(budget_seconds=10.0)
    now[0] += 1.0
    clock.tick()
    now[0] += 3.0  # a 1 s step after 2 s of measuring dev loss
    clock.exclude(2.0)
    clock.tick()
    assert clock.training_seconds == pytest.approx(2.0)
