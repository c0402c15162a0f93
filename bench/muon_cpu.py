"""How long one Muon step takes here, for each implementation the gpt recipe chooses from.

torch.optim.Muon runs its Newton-Schulz iteration in bfloat16, which is fast on a GPU and on CPUs
with bf16 units, and several times slower than float32 on CPUs without them. The recipe times the
variants once at start (`fastest_muon`, on one matrix per shape); this times a whole step over
all of the recipe's hidden matrices, median of `--repeats`:

    .venv/bin/python bench/muon_cpu.py                 # the recipe's defaults, 2 threads
    .venv/bin/python bench/muon_cpu.py --width 128 --depth 4
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autolab.recipes import gpt  # noqa: E402


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
    parser.add_argument("--width", type=int, default=gpt.DEPTH * gpt.ASPECT_RATIO)
    parser.add_argument("--depth", type=int, default=gpt.DEPTH)
    parser.add_argument("--mlp-ratio", type=int, default=gpt.MLP_RATIO)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, h = args.width, args.mlp_ratio * args.width
    shapes = ([(w, w)] * 4 + [(h, w), (w, h)]) * args.depth
    print(f"{len(shapes)} matrices, width {w}, {args.threads} threads, median of {args.repeats}:")
    for name, make in gpt.muon_variants().items():
        params = [torch.nn.Parameter(torch.randn(*s)) for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        print(f"  {name:18s} {time_ms(make(params).step, args.repeats):7.1f} ms per step")


if __name__ == "__main__":
    main()
