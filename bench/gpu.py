"""GPU readiness in one command: the CUDA tests, the small model's speed, throughput at scale.

Takes ~8-9 minutes on one H100-class GPU (estimated: only its throughput part has run on one)
and prints one JSON object (progress goes to stderr). The parts run most needed first and --out
gets the report after each, so a call cut short loses the throughput variants first:

    .venv/bin/python bench/gpu.py                     # everything, on cuda
    .venv/bin/python bench/gpu.py --skip-tests --data ../shared/data

- `tests`: `pytest -m cuda` (the tests that skip without a GPU): passed, failed, skipped.
- `small`: the gpt recipe sized for cuda (`autolab init --device cuda`) on Tiny Shakespeare for
  10 s through `autolab train`: the sealed score in nats/char, the training seconds at which the
  training loss first fell to 1.47 nats/char, and the overhead per experiment: its total time
  (from the spawn of train.py to the sealed score, with finding the data) - training time, as
  a research session pays it for every experiment. Beside it, `command_overhead_s` adds what one
  `autolab train` pays once (its start-up and the zygotes'), and `startup_s` and `handover_s`
  split the run's share. Targets: <= 1.47 nats/char in <= 10 s, overhead <= 3 s.
  `small_warm`: the same run again, as a session's next experiment runs it, with the compile
  cache the first one left.
- `small_variants`: the small model with other constants (SMALL_VARIANTS: uncompiled).
- `throughput`: the recipe's model at karpathy/autoresearch's default shape (depth 8, width 512,
  head dim 128, MLP 4x wide, sequence 2048, vocabulary 8192, 2**19 tokens per optimizer step in
  micro-batches, full causal attention), compiled with its loss (gpt.training_loss), bf16
  autocast, the recipe's optimizers: tokens/s, MFU and peak memory. FLOPs per token are 6 x the
  parameters outside the embedding plus 12 x depth x width x sequence for attention (nanoGPT's
  and autoresearch's count), against 989.5 TFLOP/s of dense bf16. Targets: >= 50% MFU in
  <= 45 GB (autoresearch's own train.py: 44.7%, 45 GB).
- `throughput_variants`: the same, one change at a time (THROUGHPUT_VARIANTS): the recipe's MLP
  width, the loss outside the compiled model, cuDNN attention, a larger micro-batch.
- `overhead_at_shape`: the overhead per experiment, as for `small`, of one `autolab train` of that
  model (char vocabulary, a 45 s budget, --shape-budget), compilation included. Target <= 15 s.
  `overhead_at_shape_warm`: the same again, from the compile cache the first one left.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import speed  # noqa: E402

from autolab.recipes import gpt  # noqa: E402
from autolab.research.constants import apply_changes  # noqa: E402

PEAK_BF16_FLOPS = 989.5e12  # H100 SXM dense bf16
TARGET_NATS = 1.47  # nanoGPT on an H100 reaches this on Tiny Shakespeare in ~31 s
# karpathy/autoresearch's default: depth 8, width 512 (aspect 64), head dim 128, an MLP 4x as
# wide as the model (the recipe's own MLP_RATIO is 2), 2**19 tokens a step.
SHAPE = dict(depth=8, dim=512, head_dim=128, seq_len=2048, vocab=8192, tokens_per_step=2**19,
             mlp_ratio=4)  # fmt: skip
# The same model as train.py constants, for the overhead run (the vocabulary is the data's).
SHAPE_CONSTANTS = {"DEPTH": 8, "ASPECT_RATIO": 64, "HEAD_DIM": 128, "MLP_RATIO": 4,
                   "SEQ_LEN": 2**11, "BATCH_SIZE": 2**5}  # fmt: skip
# What else the first GPU should measure at the shape, one change at a time: the recipe's own
# MLP width (the first run's 37.7% MFU was at MLP_RATIO 2), the loss outside the compiled model
# (the recipe before training_loss), cuDNN's attention in place of torch's choice (FlashAttention
# 2 on an H100), and twice the micro-batch.
THROUGHPUT_VARIANTS = [{"mlp_ratio": 2}, {"fused_loss": False},
                       {"attention": "CUDNN_ATTENTION"}, {"micro_batch": 64}]  # fmt: skip
# And of the small model: uncompiled. Even from the compile cache, tracing the model again costs
# a run seconds of start-up (4-15 s on 2 CPU cores), which a 10 s budget may not win back.
SMALL_VARIANTS = [{"COMPILE": False}]
THROUGHPUT_OPTIONS = ("micro_batch", "attention", "fused_loss")  # throughput()'s, besides shape


# The isolation of the runs: the sandbox, unless the first run could not have it on this image
# (a lent GPU runs its own Python); then `process`, and the report says why.
ISOLATION: list[str | None] = [None]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def flops_per_token(model: torch.nn.Module, depth: int, dim: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters + 12 x depth x width x sequence."""
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]  # lookups
    params = sum(p.numel() for p in model.parameters()) - sum(e.weight.numel() for e in embeddings)
    return 6 * params + 12 * depth * dim * seq_len


def throughput(
    device: str,
    shape: dict,
    micro_batch: int,
    steps: int,
    compile_model: bool,
    attention: str | None = None,
    fused_loss: bool = True,
) -> dict:
    """Tokens/s, MFU and peak memory of the recipe's training step at `shape` (its `mlp_ratio`,
    if given, in place of the recipe's MLP_RATIO). `attention`: an SDPBackend name to force
    (None: torch's own choice). `fused_loss`: the recipe's step, the loss compiled with the
    model (gpt.training_loss); False computes it outside, as the recipe did before."""
    torch.manual_seed(0)
    torch._dynamo.reset()  # each measurement compiles its own graphs
    depth, dim, seq_len = shape["depth"], shape["dim"], shape["seq_len"]
    head_dim = shape["head_dim"]
    with recipe_constant("MLP_RATIO", shape.get("mlp_ratio", gpt.MLP_RATIO)):
        model = gpt.GPT(shape["vocab"], depth, dim, head_dim, seq_len).to(device)
    with contextlib.redirect_stdout(sys.stderr):  # the recipe says which Muon it chose
        optimizers = gpt.build_optimizers(model, dim, device)
    if fused_loss:
        loss_of = torch.compile(gpt.training_loss) if compile_model else gpt.training_loss
    else:  # the same loss of a compiled model's logits, computed outside it
        logits_of = torch.compile(model) if compile_model else model
        loss_of = lambda model, x, y: gpt.training_loss(logits_of, x, y)  # noqa: E731

    accumulate = max(1, shape["tokens_per_step"] // (micro_batch * seq_len))
    device_type = device.split(":")[0]
    cuda = device_type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    backends = [getattr(torch.nn.attention.SDPBackend, attention)] if attention else None

    def attention_backend():  # a fresh context each time: sdpa_kernel's cannot be re-entered
        return torch.nn.attention.sdpa_kernel(backends) if backends else contextlib.nullcontext()

    def step() -> None:
        for _ in range(accumulate):
            x = torch.randint(0, shape["vocab"], (micro_batch, seq_len + 1), device=device)
            autocast = torch.autocast(device_type, dtype=torch.bfloat16, enabled=cuda)
            with autocast, attention_backend():
                loss = loss_of(model, x[:, :-1], x[:, 1:])
            (loss / accumulate).backward()
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)

    started = time.perf_counter()
    step()  # compiles
    sync()
    first_step = time.perf_counter() - started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - started
    tokens_per_sec = steps * accumulate * micro_batch * seq_len / seconds
    flops = flops_per_token(model, depth, dim, seq_len)
    return {
        "shape": shape,
        "micro_batch": micro_batch,
        "attention": attention or "torch's choice",
        "fused_loss": fused_loss,
        "accumulation": accumulate,
        "first_step_s": round(first_step, 2),
        "tokens_per_sec": round(tokens_per_sec),
        "flops_per_token": flops,
        "mfu_percent": round(100 * tokens_per_sec * flops / PEAK_BF16_FLOPS, 2),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }


@contextlib.contextmanager
def recipe_constant(name: str, value):
    """The recipe module's constant `name` set to `value` while a model is built."""
    before = getattr(gpt, name)
    setattr(gpt, name, value)
    try:
        yield
    finally:
        setattr(gpt, name, before)


def throughput_variants(device: str, args, compile_model: bool) -> list[dict]:
    """throughput() once per --throughput-variants entry: each changes the shape's keys, or
    micro_batch, attention or fused_loss, from the headline measurement's."""
    results = []
    for variant in args.throughput_variants:
        shape = {k: v for k, v in variant.items() if k in args.shape or k == "mlp_ratio"}
        settings = dict(shape={**args.shape, **shape}, micro_batch=args.micro_batch)
        settings.update({k: v for k, v in variant.items() if k in THROUGHPUT_OPTIONS})
        try:
            result = throughput(device, steps=args.steps, compile_model=compile_model, **settings)
        except Exception as err:  # noqa: BLE001 - one variant's failure is its result
            result = {"error": f"{type(err).__name__}: {err}"}
        results.append({"variant": variant, **result})
    return results


def cuda_test_files() -> list[str]:
    """The test files with cuda-marked tests: collecting only them, a module that needs a
    package the GPU machine lacks (a dashboard or data test) cannot fail the collection (the
    first GPU run lost its one collection error's text)."""
    files = sorted((REPO / "tests").glob("test_*.py"))
    return [str(f.relative_to(REPO)) for f in files if "mark.cuda" in f.read_text()]


def cuda_tests() -> dict:
    """`pytest -m cuda` over cuda_test_files(): the counts of its one-line summary."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-rsfE", "--tb=short",
         "-p", "no:cacheprovider", *cuda_test_files()],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": speed.repo_pythonpath()},
    )  # fmt: skip
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", proc.stdout)}
    lines = proc.stdout.strip().splitlines() or ["no output"]
    # The skip reasons and the failures (-rsfE), so a run on a lent GPU says what went wrong.
    return {"exit": proc.returncode, **counts, "summary": lines[-1], "output": lines[-40:]}


def train_run(source: Path, device: str, budget: float, changes: dict, home: Path, root: Path):
    """One `autolab train` of the gpt recipe sized for `device` plus `changes`, through the CLI:
    (summary values, wall seconds, training-loss records)."""
    workspace = root / f"ws-{len(list(root.iterdir()))}"
    env = {**os.environ, "AUTOLAB_HOME": str(home), "PYTHONPATH": speed.repo_pythonpath()}
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace), "--device", device.split(":")[0],
         "--dataset", str(source), "--budget", f"{budget:g}s"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    train_py = workspace / "train.py"
    train_py.write_text(apply_changes(train_py.read_text(), changes))
    started = time.time()
    result = speed.train_once(workspace, home, seed=0, device=device, isolation=ISOLATION[0])
    wall = time.time() - started
    metrics = sorted((workspace / ".autolab" / "runs").glob("*/metrics.jsonl"))
    records = [json.loads(line) for line in metrics[-1].read_text().splitlines()] if metrics else []
    return result, wall, records


def small_model(
    source: Path, device: str, budget: float, home: Path, root: Path, changes: dict | None = None
) -> dict:
    result, wall, records = train_run(source, device, budget, changes or {}, home, root)
    if "error" in result:
        return {"error": result["error"], "log": result.get("log", "")}
    meta = speed.prepare_data(source, home).meta
    reached = next((r["training_seconds"] for r in records if r["loss"] <= TARGET_NATS), None)
    return {
        "changes": changes or {},
        "val_nats_per_char": round(speed.nats_per_char(result["val_bpb"], meta), 4),
        "val_bpb": round(result["val_bpb"], 4),
        "train_loss_first_at_1.47_s": reached,
        **overheads(result, wall),
        "tokens_per_sec": round(result["tokens_per_sec"]),
        "isolation": result.get("isolation"),  # the sandbox's first run on a GPU, if it has one
    }


def overhead_at_shape(source: Path, device: str, budget: float, home: Path, root: Path) -> dict:
    result, wall, _ = train_run(source, device, budget, SHAPE_CONSTANTS, home, root)
    if "error" in result:
        return {"error": result["error"], "log": result.get("log", "")}
    return overheads(result, wall)


def overheads(summary: dict, wall: float) -> dict:
    """What one `autolab train` (`summary`, its `wall` seconds) cost beyond training: per
    experiment (total - training seconds), and as a command, its own start-up included."""
    training = summary["training_seconds"]
    return {
        "training_seconds": round(training, 2),
        "num_steps": summary["num_steps"],
        "overhead_s": round(summary["total_seconds"] - training, 2),
        "startup_s": summary.get("startup_seconds"),
        "handover_s": summary.get("handover_seconds"),
        "command_overhead_s": round(wall - training, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N (cpu: a smoke run)")
    parser.add_argument(
        "--data", type=Path, default=speed.SHARED_DATA, help="folder with tinyshakespeare.txt"
    )
    parser.add_argument("--budget", type=float, default=10.0, help="the small model's seconds")
    parser.add_argument(
        "--shape-budget", type=float, default=45.0,
        help="training seconds of the run at the shape: compiling the big model takes tens of "
        "seconds of the run's time limit, so a 10 s budget would end it as a timeout",
    )  # fmt: skip
    parser.add_argument("--micro-batch", type=int, default=32, help="sequences per forward")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    parser.add_argument("--skip-tests", action="store_true", help="leave out pytest -m cuda")
    parser.add_argument("--skip-runs", action="store_true", help="leave out the autolab trains")
    parser.add_argument("--shape", type=json.loads, default=SHAPE, help="throughput shape (JSON)")
    parser.add_argument(
        "--small-variants", type=json.loads, default=SMALL_VARIANTS,
        help='also train the small model with these constant changes (JSON list of objects, '
        'e.g. \'[{"BATCH_SIZE": 128}]\'; [] for none): candidates for the recipe\'s cuda sizing',
    )  # fmt: skip
    parser.add_argument(
        "--throughput-variants", type=json.loads, default=THROUGHPUT_VARIANTS,
        help="after the overhead run, throughput with each of these changes (JSON list of "
        f"objects with shape keys or {', '.join(THROUGHPUT_OPTIONS)}); [] for none",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="also write the report here after each part")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("torch sees no CUDA device; this benchmark is for a GPU")
    started = time.time()
    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }

    def section(name: str, measure) -> None:
        """One part of the report; a part that breaks is reported as its error, and the report
        so far is written to --out, so one failure on a lent GPU does not cost the others."""
        log(f"{name} ...")
        try:
            report[name] = measure()
        except Exception as err:  # noqa: BLE001 - the report names what broke and goes on
            report[name] = {"error": f"{type(err).__name__}: {err}"}
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))

    if not args.skip_tests:
        section("tests", cuda_tests)
    source = args.data / speed.DATASETS["tinyshakespeare"]
    with tempfile.TemporaryDirectory(prefix="autolab-gpu-") as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "runs"
        root.mkdir()
        if not args.skip_runs:
            section("small", lambda: small_model(source, args.device, args.budget, home, root))
            if "error" in report["small"]:
                report["sandbox_error"] = report.pop("small")["error"]
                ISOLATION[0] = "process"
                section("small", lambda: small_model(source, args.device, args.budget, home, root))
            # Again, as the next experiment of a session would run: from the compile cache the
            # first run left (autolab.sandbox.compile_cache), in the same autolab home.
            section("small_warm", lambda: small_model(source, args.device, args.budget, home, root))
            if args.small_variants:
                section("small_variants", lambda: [
                    small_model(source, args.device, args.budget, home, root, changes)
                    for changes in args.small_variants
                ])  # fmt: skip
        compile_model = args.device.startswith("cuda")
        section("throughput", lambda: throughput(
            args.device, args.shape, args.micro_batch, args.steps, compile_model
        ))  # fmt: skip
        if not args.skip_runs:
            for name in ("overhead_at_shape", "overhead_at_shape_warm"):  # the second: cached
                section(name, lambda: overhead_at_shape(
                    source, args.device, args.shape_budget, home, root
                ))  # fmt: skip
        if args.throughput_variants:
            section("throughput_variants", lambda: throughput_variants(
                args.device, args, compile_model
            ))  # fmt: skip
    report["seconds"] = round(time.time() - started, 1)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
