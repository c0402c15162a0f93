"""Causality probe: logits at positions <= t must not depend on tokens after t.

A model that looks ahead (attention without the causal mask, a convolution that peeks right)
scores far better than it should; this catches it before its score is believed.
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
