"""Leak probes: a model's logits may depend only on earlier tokens of the same sequence.

A model that looks ahead (attention without the causal mask, a convolution that peeks right)
scores far better than it should, and so does one that reads other rows of its batch (in
evaluation, the next row holds the continuation of this one). Both are caught here before a
score is believed.
"""

import torch

TOLERANCE = 1e-3  # absolute logit difference allowed for float noise (exported fp32 programs)


@torch.no_grad()
def find_lookahead(model, tokens: torch.Tensor, vocab_size: int, seed: int = 0) -> str | None:
    """None if causal; else a one-line description of where the future leaked in.

    `tokens` is one real sequence (T,). For a few cut points t, the tokens after t are replaced
    by random ones and the logits at positions <= t compared with the original run's.
    """
    generator = torch.Generator().manual_seed(seed)
    length = tokens.shape[0]
    cuts = sorted({0, length // 3, length // 2, length - 2} - {-1}) if length > 1 else []
    base = model(tokens.unsqueeze(0)).float()
    for cut in cuts:
        changed = tokens.clone()
        tail = length - cut - 1
        changed[cut + 1 :] = torch.randint(0, vocab_size, (tail,), generator=generator).to(
            tokens.device
        )
        logits = model(changed.unsqueeze(0)).float()
        diff = (logits[0, : cut + 1] - base[0, : cut + 1]).abs().max().item()
        if diff > TOLERANCE:
            return f"logits at position {cut} changed by {diff:.3g} when later tokens changed"
    return None


@torch.no_grad()
def find_cross_row_leak(model, tokens: torch.Tensor, vocab_size: int, seed: int = 0) -> str | None:
    """None if a sequence's logits are the same alone and inside a batch of other rows."""
    generator = torch.Generator().manual_seed(seed + 1)
    alone = model(tokens.unsqueeze(0)).float()
    others = torch.randint(0, vocab_size, (3, tokens.shape[0]), generator=generator)
    batch = torch.cat([tokens.unsqueeze(0), others.to(tokens.device)])
    together = model(batch).float()[:1]
    diff = (together - alone).abs().max().item()
    if diff > TOLERANCE:
        return f"logits changed by {diff:.3g} when other rows shared the batch"
    return None
