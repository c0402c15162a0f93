import os
import sys
import time

import torch
import torch.nn.functional as F

from autolab.harness import Run

run = Run.from_env()
SEQ_LEN = 32


class Bigram(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)

    def forward(self, idx):
        return self.table(idx)


model = Bigram(run.vocab_size)
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
# --- before ---
while not run.time_up:
    x, y = run.get_batch(32, SEQ_LEN)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    run.step(loss)
# --- finish ---
run.finish(model, context_len=SEQ_LEN)
