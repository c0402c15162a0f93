"""How long torch.optim.Muon's step takes on a CPU, and how long it would take in float32.

torch.optim.Muon orthogonalises each update with a Newton-Schulz iteration in bfloat16, which is
fast on a GPU and slow on a CPU without bf16 units. This times one optimizer step for the gpt
recipe's default matrices (3 blocks of width 96: q, k, v and the output projection 96x96, the
MLP 96x384 and 384x96), as torch runs it, and the same iteration done in float32 by this script.

    .venv/bin/python bench/muon_cpu.py                 # 2 threads, as the recipe sets them
    .venv/bin/python bench/muon_cpu.py --width 128 --depth 4
"""

import argparse
import statistics
import time

import torch


def newton_schulz_fp32(grad, ns_coefficients=(3.4445, -4.775, 2.0315), ns_steps=5, eps=1e-7):
    """The quintic iteration torch.optim.Muon uses, kept in float32."""
    a, b, c = ns_coefficients
    x = grad.float()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def time_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--mlp-ratio", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, h = args.width, args.mlp_ratio * args.width
    shapes = ([(w, w)] * 4 + [(h, w), (w, h)]) * args.depth
    params = [torch.nn.Parameter(torch.randn(*s)) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    muon = torch.optim.Muon(params, lr=0.01, momentum=0.95, adjust_lr_fn="original")
    step = time_ms(muon.step, args.repeats)
    fp32 = time_ms(lambda: [newton_schulz_fp32(p.grad) for p in params], args.repeats)
    print(f"{len(shapes)} matrices, width {w}, {args.threads} threads, median of {args.repeats}:")
    print(f"  torch.optim.Muon step (bfloat16 Newton-Schulz): {step:7.1f} ms")
    print(f"  the same iteration in float32, all matrices:    {fp32:7.1f} ms")
    print(f"  ratio: {step / fp32:.1f}x")


if __name__ == "__main__":
    main()
