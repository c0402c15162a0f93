"""Leak probes: a model's logits may depend only on earlier tokens of the same row.

A model that looks ahead (attention without the causal mask, a convolution that peeks right)
scores far better than it should, and so does one that reads other rows of its batch (in
evaluation, the next row holds the continuation of this one). Both are caught here before a
score is believed.

The probes run on a real evaluation batch: `batch` consecutive full-length rows of the
validation split, as evaluate_bpb feeds them, so the model cannot tell a probe's base from
scoring; the base's logits are the ones scored for those rows (autolab.evaluation.sealed).
Where and what is probed comes from a generator the evaluator seeds with a secret the
experiment never sees, so a model cannot leak only where the probes do not look: every row gets
its own cut position t, drawn at random over the whole row, the tokens after t are replaced by
random ones and the logits up to t must not move. A leak at a share p of the positions escapes
all CUT_PASSES * batch cuts with probability (1 - p) ** (CUT_PASSES * batch).
"""

import numpy as np
import torch

TOLERANCE = 1e-3  # absolute logit difference allowed for float noise (exported fp32 programs)
CUT_PASSES = 4  # batches of cut probes; each tests one random cut position per row


def probe_rows(
    tokens: np.ndarray, context_len: int, batch: int, generator
) -> tuple[int | None, torch.Tensor]:
    """`batch` consecutive rows of `context_len` tokens (batch, context_len) at a random chunk,
    and the token where they start: row r is then the input of the scored chunk at
    start + r * context_len (autolab.harness.evaluate).

    A split shorter than one batch of full rows is repeated to fill it (start None), so the
    model is still probed at its full context when that is longer than the data's rows.
    """
    need = batch * context_len
    tokens = np.asarray(tokens, dtype=np.int64)
    if len(tokens) < need:
        return None, torch.from_numpy(np.resize(tokens, need).reshape(batch, context_len))
    chunks = (len(tokens) - need) // context_len + 1
    start = int(torch.randint(0, chunks, (1,), generator=generator)) * context_len
    return start, torch.from_numpy(tokens[start : start + need].reshape(batch, context_len).copy())


def random_cuts(length: int, count: int, generator) -> list[int]:
    """`count` cut positions in [0, length - 2], distinct while the row has enough of them."""
    if length < 2:
        return []
    order = torch.randperm(length - 1, generator=generator)
    return order.repeat(count // (length - 1) + 1)[:count].tolist()


@torch.no_grad()
def find_lookahead(model, rows, base, cuts: list[int], vocab_size: int, generator) -> str | None:
    """None if causal at `cuts` (one per row of `rows`); else where the future leaked in.

    `base` is model(rows). Row r's tokens after cuts[r] are randomised and its logits at
    positions <= cuts[r] compared with the base.
    """
    changed = rows.clone()
    for r, cut in enumerate(cuts):
        tail = rows.shape[1] - cut - 1
        changed[r, cut + 1 :] = torch.randint(0, vocab_size, (tail,), generator=generator)
    logits = model(changed.to(base.device)).float()
    for r, cut in enumerate(cuts):
        diff = (logits[r, : cut + 1] - base[r, : cut + 1]).abs()
        if diff.max().item() > TOLERANCE:
            at = int(diff.amax(dim=-1).argmax())
            return (
                f"logits at position {at} changed by {diff.max().item():.3g} when the tokens "
                f"after position {cut} changed"
            )
    return None


@torch.no_grad()
def find_cross_row_leak(model, rows, base, vocab_size: int, generator) -> str | None:
    """None if every row's logits stay the same when the other rows of the batch change.

    Three batches: a random half of the rows kept and the rest replaced by random tokens, the
    other half kept likewise (a dependence on any other row's content), and the real rows in a
    random order (a dependence on a neighbouring slot, which a kept half may share).
    """
    batch = rows.shape[0]
    order = torch.randperm(batch, generator=generator)
    halves = [order[: batch // 2], order[batch // 2 :]]
    for kept in halves:
        mixed = torch.randint(0, vocab_size, rows.shape, generator=generator)
        mixed[kept] = rows[kept]
        logits = model(mixed.to(base.device)).float()
        diff = (logits[kept] - base[kept]).abs().max().item()
        if diff > TOLERANCE:
            return f"logits changed by {diff:.3g} when other rows of the batch changed"
    logits = model(rows[order].to(base.device)).float()
    diff = (logits - base[order]).abs().max().item()
    if diff > TOLERANCE:
        return f"logits changed by {diff:.3g} when the rows of the batch were reordered"
    return None


@torch.no_grad()
def find_leak(model, rows, base, vocab_size: int, generator) -> str | None:
    """None if `model` passes every probe on `rows` (base = model(rows)); else the verdict's reason.

    Rows are checked against each other first, so that the cut probes, which change every row
    at once, measure look-ahead alone.
    """
    if leak := find_cross_row_leak(model, rows, base, vocab_size, generator):
        return f"reads other rows: {leak}"
    batch, length = rows.shape
    cuts = random_cuts(length, CUT_PASSES * batch, generator)
    for i in range(0, len(cuts), batch):
        if leak := find_lookahead(model, rows, base, cuts[i : i + batch], vocab_size, generator):
            return f"non-causal: {leak}"
    return None
