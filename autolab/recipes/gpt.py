"""A small modern GPT, trained for a fixed time budget. The one file an experiment edits.

In the style of karpathy/nanochat and karpathy/autoresearch `train.py`: token embedding with no
learned positions plus a hashed embedding of each (previous, current) token pair and one of each
token's place in its line, rotary position embeddings (RoPE), attention over a sliding window as
long as a training sequence, parameter-free RMSNorm, QK-norm, ReLU^2 MLP, logit soft-capping, an
untied head; Muon for the 2-D hidden matrices and AdamW for the embeddings, the head and anything
else; the learning rate follows the share of the budget used, and the model handed over for
scoring is the weights averaged over the budget's last stretch.

Run it with `autolab train`, or by hand:
    AUTOLAB_DATA_DIR=... AUTOLAB_RUN_DIR=/tmp/run AUTOLAB_BUDGET_S=30 python train.py
"""

import math
import sys
import time
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from autolab.harness import Run

# ---------------------------------------------------------------------------------------------
# Hyperparameters, every one in effect. `autolab init --device cpu|cuda` sizes them for the
# device autolab.toml names; the CPU sizes are for 2 cores and a 30 s budget on
# character-level data (names, Tiny Shakespeare).
# Two blocks 128 wide rather than three 96 wide: fewer, larger matmuls; a step costs ~10% more
# on 2 cores, and at equal steps it scored ~1% lower on names and Tiny Shakespeare (2026-11-29,
# AMD EPYC; bench/README.md).

DEPTH = 2  # number of transformer blocks; the width derives from it
ASPECT_RATIO = 64  # model_dim = DEPTH * ASPECT_RATIO, rounded up to a multiple of HEAD_DIM
HEAD_DIM = 32  # channels per attention head
MLP_RATIO = 2  # MLP hidden width = MLP_RATIO * model_dim
ACTIVATION = "relu2"  # one of: "relu2", "gelu"
ATTN_SCALE = 1.7  # attention logits = ATTN_SCALE * q.k / sqrt(HEAD_DIM); QK-norm caps q.k
SOFTCAP = 15.0  # logits = SOFTCAP * tanh(logits / SOFTCAP); 0 turns soft-capping off
BIGRAM_BUCKETS = 2**12  # rows of the (previous, current) token-pair embedding; 0 turns it off
SEQ_LEN = 2**6  # tokens per training sequence, and how far back each token attends
BATCH_SIZE = 2**6  # sequences per optimizer step

MATRIX_LR = 0.06  # Muon, 2-D hidden matrices (attention and MLP projections)
EMBEDDING_LR = 0.6  # AdamW, token embedding
UNEMBEDDING_LR = 0.01  # AdamW, output head
WEIGHT_DECAY = 0.3  # Muon's decoupled weight decay (x lr); names overfits without it
ADAM_BETA1 = 0.8  # AdamW momentum
ADAM_BETA2 = 0.95  # AdamW second-moment decay
MUON_MOMENTUM = 0.95  # Muon's (Nesterov) momentum
WARMUP_RATIO = 0.02  # share of the budget spent warming the learning rate up from 0
WARMDOWN_RATIO = 0.6  # share of the budget at the end spent decaying it linearly
FINAL_LR_FRAC = 0.0  # learning rate at the very end, as a fraction of the peak
EMA_HORIZON = 0.12  # export the weights averaged over about this last share of the budget; 0: off

BF16_AUTOCAST = False  # run the forward under bfloat16 autocast: fast on GPUs, slow on most CPUs
COMPILE = False  # torch.compile the training forward and loss; on a CPU it takes ~20 s to compile

# ---------------------------------------------------------------------------------------------


def check_choices() -> None:
    """An unknown choice or an impossible size ends the run with a one-line reason instead of
    training something else."""
    for name, value, choices in [("ACTIVATION", ACTIVATION, ("relu2", "gelu"))]:
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            print(f"FAIL: {name} = {value!r} is not one of: {allowed}", flush=True)
            sys.exit(1)
    if not isinstance(BIGRAM_BUCKETS, int) or BIGRAM_BUCKETS < 0:
        print(f"FAIL: BIGRAM_BUCKETS = {BIGRAM_BUCKETS!r} is not 0 (off) or a positive integer",
              flush=True)  # fmt: skip
        sys.exit(1)
    if not isinstance(EMA_HORIZON, int | float) or EMA_HORIZON < 0:
        print(f"FAIL: EMA_HORIZON = {EMA_HORIZON!r} is not 0 (off) or a positive share of "
              "the budget", flush=True)  # fmt: skip
        sys.exit(1)


def norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def positions_in_line(idx: torch.Tensor, breaks_line: torch.Tensor, longest: int):
    """For each token of idx (B, T), how far back the last token holding a line break is: 0 on
    that token itself, capped at `longest` - 1; `longest` where none is in view (a sequence
    that starts mid-line). `breaks_line` (vocab,) is True for the tokens holding one."""
    pos = torch.arange(idx.size(1), device=idx.device).expand_as(idx)
    last_break = torch.where(breaks_line[idx], pos, -1).cummax(dim=1).values
    return torch.where(last_break < 0, longest, (pos - last_break).clamp(max=longest - 1))


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
    def __init__(self, dim: int, head_dim: int, window: int):
        super().__init__()
        self.n_head, self.head_dim, self.window = dim // head_dim, head_dim, window
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
        # q and k have unit RMS, so q.k / sqrt(hs) is at most sqrt(hs) (5.7 at hs 32): too flat
        # to single out one position in 64 unless sharpened (nanochat's autoresearch run found
        # the same of its parameter-free QK-norm).
        scale = ATTN_SCALE / math.sqrt(self.head_dim)
        if T <= self.window:  # training, and any input no longer than a training sequence
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        else:
            y = sliding_window_attention(q, k, v, self.window, scale)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


def sliding_window_attention(q, k, v, window: int, scale: float) -> torch.Tensor:
    """Causal attention in which position t sees positions t - window + 1 .. t; q, k, v and the
    result are (B, nh, T, hs).

    The sequence is cut into blocks of `window` positions. The first block is plain causal
    attention; every later block's queries attend to the keys of the block before and their own,
    under one (window, 2 x window) mask: 2 x window keys a query rather than all T, and one mask
    for every block, which torch's fused CPU kernel takes (a mask per block it does not, and
    that was 3.7x slower).
    """
    B, nh, T, hs = q.shape
    n = -(-T // window)  # blocks; the last is filled up with zeros, which no real query sees
    q, k, v = (F.pad(t, (0, 0, 0, n * window - T)) for t in (q, k, v))
    first = F.scaled_dot_product_attention(
        q[:, :, :window], k[:, :, :window], v[:, :, :window], is_causal=True, scale=scale
    )
    if n == 1:
        return first[:, :, :T]

    def blocks(t, start, end):  # positions start..end-1 as (B, nh * blocks, window, hs)
        return t[:, :, start:end].reshape(B, nh * (n - 1), window, hs)

    pairs = [torch.cat([blocks(t, 0, -window), blocks(t, window, None)], dim=2) for t in (k, v)]
    # Query i of a block sees key j of the 2 x window where i < j <= i + window.
    ones = torch.ones(window, 2 * window, dtype=torch.bool, device=q.device)
    later = F.scaled_dot_product_attention(
        blocks(q, window, None), *pairs, attn_mask=ones.triu(1).tril(window), scale=scale
    )
    later = later.view(B, nh, (n - 1) * window, hs)
    return torch.cat([first, later], dim=2)[:, :, :T]


class MLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.c_fc = nn.Linear(dim, MLP_RATIO * dim, bias=False)
        self.c_proj = nn.Linear(MLP_RATIO * dim, dim, bias=False)

    def forward(self, x):
        x = self.c_fc(x)
        x = F.relu(x).square() if ACTIVATION == "relu2" else F.gelu(x)  # checked at start
        return self.c_proj(x)


class Block(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int):
        super().__init__()
        self.attn = Attention(dim, head_dim, window)
        self.mlp = MLP(dim)

    def forward(self, x, cos, sin):
        x = x + self.attn(norm(x), cos, sin)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        depth: int,
        dim: int,
        head_dim: int,
        seq_len: int,
        context_len: int | None = None,
        line_breaks: list[int] = (),
        line_positions: int = 16,
    ):
        """Attention reaches `seq_len` tokens back; the model reads up to `context_len` tokens
        (default: `seq_len`). `line_breaks`: the ids of the tokens that hold a line break, for
        the position-in-line embedding (none: no such embedding)."""
        super().__init__()
        self.vocab_size = vocab_size
        self.wte = nn.Embedding(vocab_size, dim)
        # A token's embedding plus one for the pair it ends, (previous token, this token), hashed
        # into BIGRAM_BUCKETS rows: the model has pair statistics from its first steps instead of
        # learning them through attention. At equal steps it scored 3.6% lower on Tiny
        # Shakespeare and ABC tunes, 0.2% higher on names (2026-12-06, AMD EPYC; bench/README.md).
        self.bigram = nn.Embedding(BIGRAM_BUCKETS, dim) if BIGRAM_BUCKETS > 0 else None
        # And one for the token's place in its line: 0 to line_positions - 1 tokens after the last
        # line break, or a row of its own when none is in view. Attention can count back to the
        # line break too, but in 275 steps it learns less of it: at equal steps this scored
        # 0.5-1.4% lower on names (where a line is a name), 0.3% higher on Tiny Shakespeare
        # (2026-12-07, AMD EPYC; bench/README.md, "Where in its line a token is"). 16 rows, not
        # 64: on ABC tunes, whose lines run long, 64 cost 2% and 16 nothing (both at the token
        # table's rate). It starts at zero, taking no draws from the seed's random numbers.
        breaks_line = torch.zeros(vocab_size, dtype=torch.bool)
        breaks_line[list(line_breaks)] = True
        self.register_buffer("breaks_line", breaks_line, persistent=False)
        self.line_positions = line_positions
        rows = torch.zeros(line_positions + 1, dim)
        self.line_position = nn.Parameter(rows) if line_breaks else None
        self.blocks = nn.ModuleList(Block(dim, head_dim, seq_len) for _ in range(depth))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        cos, sin = rotary_tables(context_len or seq_len, head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        # As nanochat: unit-variance embedding, near-zero head, output projections start at 0
        # so every block begins as the identity.
        nn.init.normal_(self.wte.weight, std=1.0)
        if self.bigram is not None:
            nn.init.zeros_(self.bigram.weight)  # starts as the plain token embedding
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
        x = self.wte(idx)  # (B, T, C)
        if self.bigram is not None:
            # The first position's "previous token" is vocab_size, a value no token has.
            prev = F.pad(idx[:, :-1], (1, 0), value=self.vocab_size)
            x = x + self.bigram((prev * (self.vocab_size + 1) + idx) % BIGRAM_BUCKETS)
        if self.line_position is not None:
            where = positions_in_line(idx, self.breaks_line, self.line_positions)
            x = x + self.line_position[where]
        x = norm(x)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.lm_head(norm(x)).float()  # (B, T, V)
        if SOFTCAP > 0:
            logits = SOFTCAP * torch.tanh(logits / SOFTCAP)
        return logits


def training_loss(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of model on x against y, (B, T) each. One function, so that
    torch.compile (COMPILE) fuses the soft-capped float32 logits, B x T x vocab, into the loss
    instead of writing them out and reading them back: at a GPU's 8192-token vocabulary they are
    2 GB a micro-batch of 32 x 2048 (nanochat and autoresearch compute the loss in the model's
    compiled forward for the same reason)."""
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def lr_multiplier(progress: float) -> float:
    """Warm up, hold, then decay linearly to FINAL_LR_FRAC over the last WARMDOWN_RATIO."""
    if progress < WARMUP_RATIO:
        return (progress + 1e-3) / WARMUP_RATIO
    if progress <= 1.0 - WARMDOWN_RATIO:
        return 1.0
    decay = (1.0 - progress) / WARMDOWN_RATIO
    return decay + (1.0 - decay) * FINAL_LR_FRAC


def newton_schulz(grad: torch.Tensor, dtype: torch.dtype, steps: int = 5, eps: float = 1e-7):
    """The nearest semi-orthogonal matrix to grad (rows, cols), roughly: Keller Jordan's quintic
    Newton-Schulz iteration (https://kellerjordan.github.io/posts/muon/), computed as
    torch.optim.Muon computes it, but in `dtype`; torch always uses bfloat16."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = grad.to(dtype)
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T  # iterate on the wide side: the Gram matrix x @ x.T is the smaller one
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """torch.optim.Muon's update (Nesterov momentum, decoupled weight decay, Keller Jordan's
    sqrt(max(1, rows / cols)) learning-rate scale) with Newton-Schulz in `ns_dtype`."""

    def __init__(self, params, lr, momentum, weight_decay, ns_dtype: torch.dtype):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - momentum)
                update = newton_schulz(p.grad.lerp(buf, momentum), self.ns_dtype)
                p.mul_(1 - lr * decay)
                p.add_(update, alpha=-lr * max(1.0, p.size(0) / p.size(1)) ** 0.5)


def muon_variants() -> dict:
    """name -> function(params) -> a Muon with this recipe's settings, one per implementation."""
    kw = dict(lr=MATRIX_LR, momentum=MUON_MOMENTUM, weight_decay=WEIGHT_DECAY)
    return {
        "float32": lambda params: Muon(params, ns_dtype=torch.float32, **kw),
        "bfloat16": lambda params: Muon(params, ns_dtype=torch.bfloat16, **kw),
        "torch.optim.Muon": lambda params: torch.optim.Muon(params, adjust_lr_fn="original", **kw),
    }


def fastest_muon(matrices: list[torch.Tensor], device: str, repeats: int = 2):
    """The Muon variant whose step is fastest on one matrix of each of these shapes, timed here.

    Newton-Schulz in bfloat16 is what GPUs do fast; on a CPU without bfloat16 units it is several
    times slower than float32 (bench/muon_cpu.py), so the choice is measured, not assumed. Where
    one bfloat16 matmul already takes twice a float32 one, both bfloat16 variants (ours and
    torch.optim.Muon, which always iterates in bfloat16) are out without timing their steps:
    those steps took ~0.8 s of every run's start on 2 AMD EPYC cores (2026-12-07).
    """
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    shapes = sorted({tuple(m.shape) for m in matrices})
    if not device.startswith("cuda"):
        slowdown = bfloat16_matmul_slowdown(max(shapes, key=math.prod))
        if slowdown >= 2:
            print(f"muon: float32 (a bfloat16 matmul takes {slowdown:.1f}x a float32 one here; "
                  "Newton-Schulz in bfloat16 not timed)", flush=True)  # fmt: skip
            return muon_variants()["float32"](matrices)
    times = {}
    for name, make in muon_variants().items():
        params = [nn.Parameter(torch.randn(shape, device=device)) for shape in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        times[name] = 1000 * fastest_call(make(params).step, repeats, sync)
    choice = min(times, key=times.get)
    timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in times.items())
    print(f"muon: {choice} (one step on {len(shapes)} shapes: {timings})", flush=True)
    return muon_variants()[choice](matrices)


def bfloat16_matmul_slowdown(shape: tuple[int, ...], repeats: int = 2) -> float:
    """How many times a float32 Gram matrix x @ x.T of this shape a bfloat16 one takes on the
    CPU, each the fastest of `repeats` calls."""
    x = torch.randn(shape)
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        y = x.to(dtype)
        seconds[dtype] = fastest_call(partial(torch.mm, y, y.T), repeats)
    return seconds[torch.bfloat16] / seconds[torch.float32]


def fastest_call(call, repeats: int, sync=lambda: None) -> float:
    """Seconds of the fastest of `repeats` calls, after one untimed call: the first allocates
    (an optimizer's momentum buffers) and may compile a kernel."""
    best = math.inf
    for i in range(repeats + 1):
        sync()
        started = time.perf_counter()
        call()
        sync()
        best = min(best, time.perf_counter() - started) if i else best
    return best


def build_optimizers(model: GPT, dim: int, device: str) -> list[torch.optim.Optimizer]:
    # AdamW rates are given for a width of 768 (nanochat) and scale as 1/sqrt(width).
    scale = (dim / 768) ** -0.5
    matrices = list(model.blocks.parameters())  # all 2-D: the blocks hold no biases or gains
    groups = [
        dict(params=[model.wte.weight], lr=EMBEDDING_LR * scale),
        dict(params=[model.lm_head.weight], lr=UNEMBEDDING_LR * scale),
    ]
    if model.bigram is not None:
        # The pair table steps at a sixth of the token table's rate: at the same rate it cost
        # names ~1%; at a sixth it scores 3.6% lower than no table on Tiny Shakespeare and the
        # ABC tunes for 0.2% higher on names (bench/README.md, "The token-pair embedding").
        # Tied to EMBEDDING_LR, not a constant of its own: a search moves both tables' rates
        # together, and a rate of its own cost `search` its lead (bench/README.md, 2026-12-06).
        groups.append(dict(params=[model.bigram.weight], lr=EMBEDDING_LR / 6 * scale))
    if model.line_position is not None:
        # At half the token table's rate: at its full rate names gained as much but Tiny
        # Shakespeare lost 1.1% (bench/README.md, "Where in its line a token is").
        groups.append(dict(params=[model.line_position], lr=EMBEDDING_LR / 2 * scale))
    adamw = torch.optim.AdamW(
        groups,
        betas=(ADAM_BETA1, ADAM_BETA2),
        eps=1e-10,
        weight_decay=0.0,
    )
    optimizers = [adamw, fastest_muon(matrices, device)]
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


class WeightAverage:
    """An exponential moving average of the weights, kept in training time rather than steps: a
    step that used a share dp of the budget decays the old average by exp(-dp / horizon), so the
    average spans the same share of the budget on a slow CPU as on a GPU taking 20x the steps.

    The exported model is the average. At equal steps (horizon 0.12 against none) it scored 0.6%
    lower on names and 0.3% lower on Tiny Shakespeare; 0.25 was worse than 0.12 on both
    (2026-12-06, AMD EPYC; bench/README.md, "Averaging the weights").
    """

    def __init__(self, model: nn.Module, horizon: float):
        self.params = list(model.parameters())
        self.horizon, self.progress = horizon, 0.0
        self.average = [p.detach().clone() for p in self.params] if horizon > 0 else []

    @torch.no_grad()
    def update(self, progress: float) -> None:
        if self.horizon > 0:
            weight = 1.0 - math.exp(-(progress - self.progress) / self.horizon)
            # One kernel launch for all the tensors on a GPU, rather than one per tensor.
            torch._foreach_lerp_(self.average, self.params, weight)
        self.progress = progress

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Put the average into the model; with horizon 0 the model keeps its last weights."""
        if self.horizon > 0:
            for average, p in zip(self.average, self.params, strict=True):
                p.copy_(average)


def main():
    check_choices()
    run = Run.from_env()
    if run.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores

    dim = math.ceil(DEPTH * ASPECT_RATIO / HEAD_DIM) * HEAD_DIM
    # The handed-over model reads 8 training sequences at once, each token still attending at
    # most SEQ_LEN back (a sliding window), so no attention spans a distance training never
    # showed. The evaluator scores the text in chunks of the model's length, each token with the
    # context inside its chunk: longer chunks leave fewer tokens near a chunk's start with less
    # than SEQ_LEN of context. The same weights scored 0.9% lower on names, 2.2% on Tiny
    # Shakespeare and 6.0% on ABC tunes, for 1.3-1.9 s more overhead a run (2026-12-06, AMD
    # EPYC; bench/README.md, "Scoring in longer chunks").
    context_len = 8 * SEQ_LEN
    line_breaks = [i for i, text in enumerate(run.token_texts) if "\n" in text]
    model = GPT(run.vocab_size, DEPTH, dim, HEAD_DIM, SEQ_LEN, context_len, line_breaks)
    model = model.to(run.device)
    optimizers = build_optimizers(model, dim, run.device)
    loss_of = torch.compile(training_loss) if COMPILE else training_loss
    run.watch(model, context_len=context_len)  # dev loss a few times while training, off the clock
    num_params = sum(p.numel() for p in model.parameters())
    print(f"model: depth {DEPTH}, width {dim}, {num_params / 1e6:.2f}M parameters", flush=True)

    device_type = run.device.split(":")[0]
    average = WeightAverage(model, EMA_HORIZON)
    while not run.time_up:
        x, y = run.get_batch(BATCH_SIZE, SEQ_LEN)  # (B, T) each
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=BF16_AUTOCAST):
            loss = loss_of(model, x, y)
        loss.backward()
        lrm = lr_multiplier(run.progress) * run.lr_scale  # lr_scale: 1.0 except in lr-find
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * lrm
            opt.step()
        model.zero_grad(set_to_none=True)
        average.update(run.progress)
        run.step(loss, lr=MATRIX_LR * lrm)

    average.copy_to_model()
    # Sampling feeds the model one training sequence per generated token: a call costs what
    # its exported length costs, ~8x as much at 8x the length.
    run.finish(model, context_len=context_len, sample_len=SEQ_LEN)


if __name__ == "__main__":
    main()
