"""The next-token distribution after a prompt, as makemore looks at it.

The prompt is read as the start of a document: the data's separator goes in front of it, so
an empty prompt asks "how do documents begin?" and `em` asks what follows `em` in a new name.
"""

import math
from dataclasses import asdict, dataclass

import torch

from autolab.errors import UsageError

SHOW_ALLOWED = 30  # characters listed when a prompt holds ones the vocabulary lacks


@dataclass
class NextToken:
    rank: int
    token_id: int
    label: str  # tokenizer.token_label: whitespace drawn visibly
    prob: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NextTokens:
    context_ids: list[int]  # what the model saw: separator + prompt, at most context_len tokens
    truncated: bool  # the prompt was longer than the context and lost its start
    top: list[NextToken]
    entropy_bits: float  # of the whole distribution


def encode_checked(tokenizer, text: str, what: str = "prompt") -> list[int]:
    """`text` as token ids; a UsageError naming the characters a char vocabulary lacks."""
    chars = getattr(tokenizer, "chars", None)
    if chars is not None:
        missing = sorted({ch for ch in text if ch not in tokenizer.ids})
        if missing:
            shown = " ".join(
                tokenizer.token_label(tokenizer.ids[ch]) for ch in chars[:SHOW_ALLOWED]
            )
            more = f" … ({len(chars)} in all)" if len(chars) > SHOW_ALLOWED else ""
            raise UsageError(
                f"the {what} has characters not in the vocabulary: "
                f"{', '.join(repr(ch) for ch in missing)}; the vocabulary has {shown}{more}"
            )
    return tokenizer.encode(text)


def context_ids(tokenizer, meta: dict, prompt: str, context_len: int) -> tuple[list[int], bool]:
    """Separator + prompt as ids, cut to the last `context_len`; and whether it was cut."""
    ids = tokenizer.encode(meta.get("separator", "\n")) + encode_checked(tokenizer, prompt)
    if not ids:
        raise UsageError("give a prompt: this data has no separator to start a document with")
    return ids[-context_len:], len(ids) > context_len


@torch.no_grad()
def next_token_probs(model, ids: list[int]) -> torch.Tensor:
    """P(next token | ids), shape (V,), float64 for summing."""
    logits = model(torch.tensor([ids], dtype=torch.long))[0, -1].float()  # (V,)
    return torch.softmax(logits, dim=-1).double()


def top_next_tokens(model, info: dict, tokenizer, meta: dict, prompt: str, top: int = 10):
    """The `top` most likely next tokens after `prompt`, most likely first."""
    if top < 1:
        raise UsageError("--top must be at least 1")
    ids, truncated = context_ids(tokenizer, meta, prompt, int(info["context_len"]))
    probs = next_token_probs(model, ids)
    values, indices = torch.topk(probs, min(top, probs.numel()))
    rows = [
        NextToken(rank, int(i), tokenizer.token_label(int(i)), float(p))
        for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist(), strict=True), 1)
    ]
    entropy = -(probs * torch.log(probs.clamp_min(1e-300))).sum().item() / math.log(2)
    return NextTokens(ids, truncated, rows, entropy)
