"""The yardstick for bench/speed.py: nanoGPT's "baby GPT" CPU configuration, as a train.py.

karpathy/nanoGPT's README trains this on Tiny Shakespeare on a CPU (`--device=cpu
--compile=False --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--dropout=0.0`, with config/train_shakespeare_char.py's lr 1e-3, beta2 0.99, 100 warm-up
iterations and min_lr = lr / 10). Written here from that description, not copied: a GPT-2 block
(pre-LayerNorm without biases, GELU MLP, learned positions, the head tied to the embedding),
GPT-2's initialisation, AdamW with weight decay on the 2-D weights only, gradient clipping at
1.0, then cosine decay to lr / 10 over what is left of the time budget instead of a fixed count
of iterations. Machines differ several times in speed; dividing a recipe's score by this one's,
measured in the same session on the same data, gives a figure that travels.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from autolab.harness import Run

N_LAYER = 4  # transformer blocks
N_HEAD = 4  # attention heads
N_EMBD = 128  # channels
BLOCK_SIZE = 64  # context length in tokens
BATCH_SIZE = 12  # sequences per step
LEARNING_RATE = 1e-3  # peak AdamW learning rate
MIN_LR = 1e-4  # the cosine ends here (lr / 10)
BETA1 = 0.9  # AdamW momentum
BETA2 = 0.99  # AdamW second-moment decay
WEIGHT_DECAY = 0.1  # AdamW decoupled weight decay, 2-D weights only
GRAD_CLIP = 1.0  # clip the gradient's global norm to this
WARMUP_ITERS = 100  # linear warm-up, in iterations


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.proj = nn.Linear(N_EMBD, N_EMBD, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(N_EMBD, dim=2)
        q, k, v = (t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD, bias=False)
        self.attn = SelfAttention()
        self.ln_2 = nn.LayerNorm(N_EMBD, bias=False)
        self.fc = nn.Linear(N_EMBD, 4 * N_EMBD, bias=False)
        self.proj = nn.Linear(4 * N_EMBD, N_EMBD, bias=False)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class BabyGPT(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, N_EMBD)
        self.wpe = nn.Embedding(BLOCK_SIZE, N_EMBD)
        self.blocks = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD, bias=False)
        self.lm_head = nn.Linear(N_EMBD, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as GPT-2
        for name, p in self.named_parameters():
            if p.dim() == 2:  # GPT-2: N(0, 0.02), residual projections scaled by depth
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx):
        """idx (B, T) with T <= BLOCK_SIZE -> logits (B, T, vocab)."""
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def main():
    run = Run.from_env()  # the harness has set torch's threads, as for the recipes
    model = BabyGPT(run.vocab_size).to(run.device)
    decayed = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [dict(params=decayed, weight_decay=WEIGHT_DECAY), dict(params=others, weight_decay=0.0)],
        lr=LEARNING_RATE,
        betas=(BETA1, BETA2),
    )
    warmup_end = None  # the share of the budget the warm-up took
    step = 0
    while not run.time_up:
        if step < WARMUP_ITERS:
            lr = LEARNING_RATE * (step + 1) / (WARMUP_ITERS + 1)
        else:
            warmup_end = run.progress if warmup_end is None else warmup_end
            ratio = (run.progress - warmup_end) / max(1e-9, 1.0 - warmup_end)
            lr = MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LEARNING_RATE - MIN_LR)
        for group in optimizer.param_groups:
            group["lr"] = lr * run.lr_scale
        x, y = run.get_batch(BATCH_SIZE, BLOCK_SIZE)  # (B, T) each
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        run.step(loss, lr=lr)
        step += 1

    run.finish(model, context_len=BLOCK_SIZE)


if __name__ == "__main__":
    main()
