"""A small modern GPT, trained for a fixed time budget. The one file an experiment edits.

In the style of karpathy/nanochat and karpathy/autoresearch `train.py`: token embedding with no
learned positions, rotary position embeddings (RoPE), parameter-free RMSNorm, QK-norm, ReLU^2
MLP, logit soft-capping, an untied head; Muon for the 2-D hidden matrices and AdamW for the
embedding, the head and anything else; the learning rate follows the share of the budget used.

Run it with `autolab train`, or by hand:
    AUTOLAB_DATA_DIR=... AUTOLAB_RUN_DIR=/tmp/run AUTOLAB_BUDGET_S=30 python train.py
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from autolab.harness import Run

# ---------------------------------------------------------------------------------------------
# Hyperparameters. Tuned for 2 CPU cores and a 30 s budget on character-level data (names,
# Tiny Shakespeare; bench/speed.py, 2026-11-23: sealed 1.99 nats/char on names, 1.53 on Tiny
# Shakespeare); CUDA runs scale up in the block below.

DEPTH = 3  # number of transformer blocks; the width derives from it
ASPECT_RATIO = 32  # model_dim = DEPTH * ASPECT_RATIO, rounded up to a multiple of HEAD_DIM
HEAD_DIM = 32  # channels per attention head
MLP_RATIO = 4  # MLP hidden width = MLP_RATIO * model_dim
ACTIVATION = "relu2"  # one of: "relu2", "gelu"
SOFTCAP = 15.0  # logits = SOFTCAP * tanh(logits / SOFTCAP); 0 turns soft-capping off
SEQ_LEN = 2**6  # context length in tokens, for training and for the exported model
BATCH_SIZE = 2**6  # sequences per optimizer step

MATRIX_LR = 0.04  # Muon, 2-D hidden matrices (attention and MLP projections)
EMBEDDING_LR = 0.6  # AdamW, token embedding
UNEMBEDDING_LR = 0.01  # AdamW, output head
WEIGHT_DECAY = 0.3  # Muon's decoupled weight decay (x lr); names overfits without it
ADAM_BETA1 = 0.8  # AdamW momentum
ADAM_BETA2 = 0.95  # AdamW second-moment decay
MUON_MOMENTUM = 0.95  # Muon's (Nesterov) momentum
WARMUP_RATIO = 0.02  # share of the budget spent warming the learning rate up from 0
WARMDOWN_RATIO = 0.6  # share of the budget at the end spent decaying it linearly
FINAL_LR_FRAC = 0.0  # learning rate at the very end, as a fraction of the peak

COMPILE = False  # torch.compile the training forward (always on CUDA, see below)
NUM_THREADS = 2  # CPU threads for torch; 0 keeps torch's default
# Measured on 2 AMD EPYC cores, torch 2.13, ms per step at depth 4 (width 128, 32 x 128 tokens):
# fp32 eager 2 threads 254, 1 thread 357; torch.compile 2 threads 241 but 19.5 s to compile
# (1 thread 302, 12 s), which a 30 s budget cannot pay for. Depth 3: 116 ms eager, 2 threads.

# CUDA: a bigger model and longer context, bf16 autocast, compiled, flash attention.
CUDA_DEPTH = 8  # replaces DEPTH on CUDA
CUDA_SEQ_LEN = 2**9  # replaces SEQ_LEN on CUDA
CUDA_BATCH_SIZE = 2**6  # replaces BATCH_SIZE on CUDA

# ---------------------------------------------------------------------------------------------


def norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0):
    """cos and sin of shape (1, seq_len, 1, head_dim // 2), for `apply_rotary`."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]


def apply_rotary(x, cos, sin):
    """Rotate channel pairs (first half, second half) of x (B, T, nh, hs) by position."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.n_head, self.head_dim = dim // head_dim, head_dim
        self.c_q = nn.Linear(dim, dim, bias=False)
        self.c_k = nn.Linear(dim, dim, bias=False)
        self.c_v = nn.Linear(dim, dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_head, self.head_dim)
        q, k = norm(apply_rotary(q, cos, sin)), norm(apply_rotary(k, cos, sin))  # QK-norm
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.c_fc = nn.Linear(dim, MLP_RATIO * dim, bias=False)
        self.c_proj = nn.Linear(MLP_RATIO * dim, dim, bias=False)

    def forward(self, x):
        x = self.c_fc(x)
        x = F.relu(x).square() if ACTIVATION == "relu2" else F.gelu(x)
        return self.c_proj(x)


class Block(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.attn = Attention(dim, head_dim)
        self.mlp = MLP(dim)

    def forward(self, x, cos, sin):
        x = x + self.attn(norm(x), cos, sin)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, depth: int, dim: int, head_dim: int, seq_len: int):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(Block(dim, head_dim) for _ in range(depth))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        cos, sin = rotary_tables(seq_len, head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        # As nanochat: unit-variance embedding, near-zero head, output projections start at 0
        # so every block begins as the identity.
        nn.init.normal_(self.wte.weight, std=1.0)
        nn.init.normal_(self.lm_head.weight, std=0.001)
        for block in self.blocks:
            for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
                bound = math.sqrt(3.0 / linear.in_features)  # uniform with std 1/sqrt(fan_in)
                nn.init.uniform_(linear.weight, -bound, bound)
            nn.init.zeros_(block.attn.c_proj.weight)
            nn.init.zeros_(block.mlp.c_proj.weight)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, vocab); position t sees tokens 0..t only."""
        T = idx.size(1)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        x = norm(self.wte(idx))  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.lm_head(norm(x)).float()  # (B, T, V)
        if SOFTCAP > 0:
            logits = SOFTCAP * torch.tanh(logits / SOFTCAP)
        return logits


def lr_multiplier(progress: float) -> float:
    """Warm up, hold, then decay linearly to FINAL_LR_FRAC over the last WARMDOWN_RATIO."""
    if progress < WARMUP_RATIO:
        return (progress + 1e-3) / WARMUP_RATIO
    if progress <= 1.0 - WARMDOWN_RATIO:
        return 1.0
    decay = (1.0 - progress) / WARMDOWN_RATIO
    return decay + (1.0 - decay) * FINAL_LR_FRAC


def build_optimizers(model: GPT, dim: int) -> list[torch.optim.Optimizer]:
    # AdamW rates are given for a width of 768 (nanochat) and scale as 1/sqrt(width).
    scale = (dim / 768) ** -0.5
    matrices = list(model.blocks.parameters())  # all 2-D: the blocks hold no biases or gains
    adamw = torch.optim.AdamW(
        [
            dict(params=[model.wte.weight], lr=EMBEDDING_LR * scale),
            dict(params=[model.lm_head.weight], lr=UNEMBEDDING_LR * scale),
        ],
        betas=(ADAM_BETA1, ADAM_BETA2),
        eps=1e-10,
        weight_decay=0.0,
    )
    muon = torch.optim.Muon(
        matrices,
        lr=MATRIX_LR,
        momentum=MUON_MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        adjust_lr_fn="original",  # Keller Jordan's sqrt(max(1, rows / cols)) scaling
    )
    optimizers = [adamw, muon]
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


def main():
    global DEPTH, SEQ_LEN, BATCH_SIZE
    run = Run.from_env()
    cuda = run.device.startswith("cuda")
    if cuda:
        DEPTH, SEQ_LEN, BATCH_SIZE = CUDA_DEPTH, CUDA_SEQ_LEN, CUDA_BATCH_SIZE
        torch.backends.cuda.matmul.allow_tf32 = True
    elif NUM_THREADS:
        torch.set_num_threads(NUM_THREADS)

    dim = math.ceil(DEPTH * ASPECT_RATIO / HEAD_DIM) * HEAD_DIM
    model = GPT(run.vocab_size, DEPTH, dim, HEAD_DIM, SEQ_LEN).to(run.device)
    optimizers = build_optimizers(model, dim)
    train_model = torch.compile(model) if cuda or COMPILE else model
    num_params = sum(p.numel() for p in model.parameters())
    print(f"model: depth {DEPTH}, width {dim}, {num_params / 1e6:.2f}M parameters", flush=True)

    while not run.time_up:
        x, y = run.get_batch(BATCH_SIZE, SEQ_LEN)  # (B, T) each
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = train_model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        lrm = lr_multiplier(run.progress) * run.lr_scale  # lr_scale: 1.0 except in lr-find
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * lrm
            opt.step()
        model.zero_grad(set_to_none=True)
        run.step(loss, lr=MATRIX_LR * lrm)

    run.finish(model, context_len=SEQ_LEN)


if __name__ == "__main__":
    main()
