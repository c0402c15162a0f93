"""How surprised a model is by each token of a text, and the text's bits per byte.

Scored as `autolab.harness.evaluate.evaluate_bpb` scores val: the ids are cut into the same
non-overlapping chunks of `context_len` inputs, so a token early in a chunk sees only the
context inside it, and total bits per byte = total nats / (ln 2 * bytes of the scored tokens).
The text is read as the start of a document (the data's separator goes in front), so its first
token is scored too.

`surprisal_json` and `comparison_json` are the numbers `autolab inspect --json` prints and the
dashboard's surprisal panel draws; both go through `score`.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from autolab.errors import UsageError
from autolab.harness.evaluate import scored_chunks
from autolab.inspect.next_token import encode_checked

BATCH_SIZE = 16


@dataclass
class TokenSurprisal:
    index: int  # position among the text's tokens
    token_id: int
    text: str  # what the token stands for, as decoded
    label: str  # the same, whitespace drawn visibly
    nats: float | None  # -ln P(token | context); None for a first token nothing predicts
    nbytes: int

    @property
    def bits(self) -> float | None:
        return None if self.nats is None else self.nats / math.log(2)

    def to_dict(self) -> dict:
        return {**asdict(self), "bits": self.bits}


@dataclass
class Surprisal:
    tokens: list[TokenSurprisal]
    total_nats: float  # over scored tokens
    total_bytes: int  # UTF-8 bytes of scored tokens

    @property
    def bpb(self) -> float:
        return self.total_nats / (math.log(2) * self.total_bytes)


def target_nats(model, ids: np.ndarray, seq_len: int, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """-ln P(ids[t+1] | its chunk's context) for every t, float64, shape (len(ids) - 1,): the
    sealed scorer's own loop (`scored_chunks`), kept token by token."""
    out = np.zeros(max(len(ids) - 1, 0), dtype=np.float64)
    for starts, _, nats in scored_chunks(model, ids, seq_len, "cpu", batch_size):
        for s, row in zip(starts, nats.cpu().numpy(), strict=True):
            out[s : s + len(row)] = row
    return out


def surprisal(model, info: dict, tokenizer, meta: dict, text: str) -> Surprisal:
    """Each token of `text` with its loss, and the totals bits per byte is made of."""
    prefix = tokenizer.encode(meta.get("separator", "\n"))
    text_ids = encode_checked(tokenizer, text, "text")
    ids = np.array(prefix + text_ids, dtype=np.int64)
    nats = target_nats(model, ids, int(info["context_len"]))
    # Target t of `nats` is ids[t + 1]; text token j is ids[len(prefix) + j].
    tokens = []
    for j, token_id in enumerate(text_ids):
        t = len(prefix) + j - 1
        token_text = tokenizer.decode([token_id])
        tokens.append(
            TokenSurprisal(
                index=j,
                token_id=token_id,
                text=token_text,
                label=tokenizer.token_label(token_id),
                nats=float(nats[t]) if t >= 0 else None,
                nbytes=int(tokenizer.token_bytes[token_id]),
            )
        )
    scored = [tok for tok in tokens if tok.nats is not None]
    if not scored:
        raise UsageError("the text is too short to score: give at least two tokens")
    return Surprisal(
        tokens,
        total_nats=math.fsum(tok.nats for tok in scored),
        total_bytes=sum(tok.nbytes for tok in scored),
    )


def score(loaded, text: str) -> Surprisal:
    """`surprisal` of a `select.LoadedRun`."""
    return surprisal(loaded.model, loaded.info, loaded.tokenizer, loaded.meta, text)


def diff_bits(a: Surprisal, b: Surprisal) -> list[float | None]:
    """B's bits minus A's, token by token (negative: B predicted it better); None where unscored."""
    return [
        None if x.bits is None or y.bits is None else y.bits - x.bits
        for x, y in zip(a.tokens, b.tokens, strict=True)
    ]


def totals(selected, result: Surprisal) -> dict:
    """A run's label and the totals its bits per byte is made of."""
    return {
        "run": selected.label,
        "run_dir": str(selected.run_dir),
        "bpb": result.bpb,
        "total_nats": result.total_nats,
        "total_bytes": result.total_bytes,
        "scored_tokens": sum(tok.nats is not None for tok in result.tokens),
    }


def surprisal_json(selected, result: Surprisal) -> dict:
    return {**totals(selected, result), "tokens": [tok.to_dict() for tok in result.tokens]}


def comparison_json(selected_a, a: Surprisal, selected_b, b: Surprisal) -> dict:
    """Both runs' totals, and per token A's bits, B's bits and B minus A."""
    tokens = []
    for x, y, d in zip(a.tokens, b.tokens, diff_bits(a, b), strict=True):
        tok = {**x.to_dict(), "bits_a": x.bits, "bits_b": y.bits, "diff_bits": d}
        del tok["bits"], tok["nats"]
        tokens.append(tok)
    return {"a": totals(selected_a, a), "b": totals(selected_b, b), "tokens": tokens}
