"""A character-level MLP language model (Bengio et al. 2003; makemore part 2), for a fixed budget.

Each position t predicts the next token from the BLOCK_SIZE tokens t-BLOCK_SIZE+1..t: their
embeddings are concatenated and passed through one tanh hidden layer. Positions near the start
of a sequence see PAD_ID in place of the tokens before it, so the model takes any length T.

Run it with `autolab train`, or by hand:
    AUTOLAB_DATA_DIR=... AUTOLAB_RUN_DIR=/tmp/run AUTOLAB_BUDGET_S=30 python train.py
"""

import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from autolab.harness import Run

# ---------------------------------------------------------------------------------------------
# Hyperparameters. Tuned for 2 CPU cores and a 30 s budget on character-level names, where a
# wider hidden layer or a longer context mostly learns the previous name and scores worse.

BLOCK_SIZE = 4  # tokens of context each prediction sees
N_EMBD = 48  # embedding channels per token
N_HIDDEN = 128  # tanh hidden units
PAD_ID = 0  # token id standing in for "before the start of the sequence"
SEQ_LEN = 2**6  # length of the training windows; every position is a training example
BATCH_SIZE = 2**5  # windows per optimizer step
CONTEXT_LEN = 2**8  # longest sequence the exported model accepts (any length works)

OPTIMIZER = "adamw"  # one of: "adamw", "sgd"
LEARNING_RATE = 0.005  # peak learning rate
WEIGHT_DECAY = 0.0  # decoupled (AdamW) or L2 (SGD) weight decay
WARMUP_RATIO = 0.02  # share of the budget spent warming the learning rate up from 0
WARMDOWN_RATIO = 0.5  # share of the budget at the end spent decaying it linearly to 0

# ---------------------------------------------------------------------------------------------


def check_choices() -> None:
    """An unknown choice ends the run with a one-line reason instead of training something else."""
    for name, value, choices in [("OPTIMIZER", OPTIMIZER, ("adamw", "sgd"))]:
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            print(f"FAIL: {name} = {value!r} is not one of: {allowed}", flush=True)
            sys.exit(1)


class MLP(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, N_EMBD)
        self.hidden = nn.Linear(BLOCK_SIZE * N_EMBD, N_HIDDEN)
        self.out = nn.Linear(N_HIDDEN, vocab_size)
        with torch.no_grad():  # makemore: a confident-but-wrong start costs the first steps
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) -> logits (B, T, vocab); position t sees tokens t-BLOCK_SIZE+1..t."""
        T = idx.size(1)
        padded = F.pad(idx, (BLOCK_SIZE - 1, 0), value=PAD_ID)  # (B, BLOCK_SIZE - 1 + T)
        # context[:, t, k] = token at position t - (BLOCK_SIZE - 1) + k; k = BLOCK_SIZE-1 is t.
        context = torch.stack([padded[:, k : k + T] for k in range(BLOCK_SIZE)], dim=-1)
        emb = self.wte(context).flatten(2)  # (B, T, BLOCK_SIZE * N_EMBD)
        return self.out(torch.tanh(self.hidden(emb)))  # (B, T, V)


def lr_multiplier(progress: float) -> float:
    if progress < WARMUP_RATIO:
        return (progress + 1e-3) / WARMUP_RATIO
    return min(1.0, (1.0 - progress) / WARMDOWN_RATIO)


def main():
    check_choices()
    run = Run.from_env()
    model = MLP(run.vocab_size).to(run.device)
    run.watch(model, context_len=CONTEXT_LEN)  # dev loss a few times while training, off the clock
    optimizer = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[OPTIMIZER](
        model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY
    )
    num_params = sum(p.numel() for p in model.parameters())
    print(f"model: block {BLOCK_SIZE}, hidden {N_HIDDEN}, {num_params / 1e3:.1f}k parameters")

    while not run.time_up:
        x, y = run.get_batch(BATCH_SIZE, SEQ_LEN)  # (B, T) each
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        lr = LEARNING_RATE * lr_multiplier(run.progress) * run.lr_scale  # lr_scale: lr-find
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        run.step(loss, lr=lr)

    run.finish(model, context_len=CONTEXT_LEN)


if __name__ == "__main__":
    main()
