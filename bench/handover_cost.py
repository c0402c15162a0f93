"""What a run costs after training, phase by phase, for the gpt recipe at the sizes you name.

`bench/researchers.py` reports a run's overhead in two shares (train.py's own, autolab's);
this splits them into the phases behind them, with the recipe's model built at each size
(untrained: the cost does not depend on the weights) on real prepared data:

- train.py's side: the dev estimate `Run.finish` prints, and the export of the scored program
  and of the sampler (`autolab.harness.handover.export_model`);
- the sealed evaluator's: loading and checking the program, the leak probes (with the base
  batch they compare against) and the score on the validation split.

    .venv/bin/python bench/handover_cost.py --data ../shared/data/names.txt
    .venv/bin/python bench/handover_cost.py --data ../shared/data/names.txt \
        --sizes '[{"DEPTH": 4, "ASPECT_RATIO": 8}]' --repeats 5

Medians over --repeats, after one warm-up of every phase (the first export in a process pays
torch.export's own start-up). Run it alone on the machine (`flock /tmp/cpu.lock ...`).
"""

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autolab.data import load_tokenizer, prepare, sealed_val_path  # noqa: E402
from autolab.evaluation.causality import find_leak, probe_rows  # noqa: E402
from autolab.harness.data import read_meta, read_token_bytes, read_tokens  # noqa: E402
from autolab.harness.evaluate import EVAL_MAX_TOKENS, evaluate_bpb, score_tokens  # noqa: E402
from autolab.harness.handover import EXPORT_BATCH, export_model, load_model  # noqa: E402
from autolab.harness.run import DEV_EVAL_TOKENS  # noqa: E402
from autolab.recipes import gpt  # noqa: E402

# The recipe's default, and the sizes the research benchmark's researchers end up at from its
# de-tuned fixture (ASPECT_RATIO 8): one and four blocks.
SIZES = [{}, {"DEPTH": 1, "ASPECT_RATIO": 8, "HEAD_DIM": 8}, {"DEPTH": 4, "ASPECT_RATIO": 8}]
PHASES = ("dev estimate", "export", "of which sampler", "load", "probes", "val score")


def build_model(size: dict, vocab_size: int, line_breaks: list[int]) -> tuple:
    """The recipe's model as its main() builds it, with `size` over the file's constants."""
    depth = size.get("DEPTH", gpt.DEPTH)
    head_dim = size.get("HEAD_DIM", gpt.HEAD_DIM)
    dim = math.ceil(depth * size.get("ASPECT_RATIO", gpt.ASPECT_RATIO) / head_dim) * head_dim
    seq_len = size.get("SEQ_LEN", gpt.SEQ_LEN)
    context_len = 8 * seq_len
    model = gpt.GPT(vocab_size, depth, dim, head_dim, seq_len, context_len, line_breaks)
    return model.eval(), context_len, seq_len


def timed(work, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = work(*args, **kwargs)
    return result, time.perf_counter() - started


def probe(program, rows: torch.Tensor, vocab_size: int, generator) -> str | None:
    """The evaluator's leak probes, with the base batch they compare against."""
    return find_leak(program, rows, program(rows).float(), vocab_size, generator)


def measure(size: dict, data_dir: Path, val_path: Path, repeats: int) -> dict:
    """Median seconds of each phase for the model at `size`."""
    meta = read_meta(data_dir)
    vocab_size = meta["vocab_size"]
    token_bytes = read_token_bytes(data_dir)
    dev = read_tokens(data_dir / "dev.bin", meta)
    val = read_tokens(val_path, meta)
    tokenizer = load_tokenizer(data_dir)
    line_breaks = [i for i in range(vocab_size) if "\n" in tokenizer.decode([i])]
    torch.manual_seed(0)
    model, context_len, seq_len = build_model(size, vocab_size, line_breaks)
    seconds: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for round_number in range(repeats + 1):  # round 0 warms up
        with tempfile.TemporaryDirectory(prefix="handover-cost-") as tmp:
            run_dir = Path(tmp)
            took: dict[str, float] = {}
            with torch.no_grad():
                _, took["dev estimate"] = timed(
                    score_tokens,
                    model,
                    dev,
                    token_bytes,
                    context_len,
                    "cpu",
                    max_tokens=DEV_EVAL_TOKENS,
                )
            _, scored_only = timed(export_model, model, context_len, vocab_size, run_dir)
            _, took["export"] = timed(
                export_model, model, context_len, vocab_size, run_dir, seq_len
            )
            took["of which sampler"] = max(0.0, took["export"] - scored_only)
            with torch.inference_mode():
                (program, _), took["load"] = timed(load_model, run_dir, "cpu")
                generator = torch.Generator().manual_seed(round_number)
                _, rows = probe_rows(
                    val[: EVAL_MAX_TOKENS + 1], context_len, EXPORT_BATCH, generator
                )
                leak, took["probes"] = timed(probe, program, rows, vocab_size, generator)
                _, took["val score"] = timed(
                    evaluate_bpb, program, val, token_bytes, context_len, "cpu"
                )
        if leak:
            raise SystemExit(f"the recipe's model failed a leak probe: {leak}")
        if round_number > 0:
            for phase, value in took.items():
                seconds[phase].append(value)
    params = sum(p.numel() for p in model.parameters())
    medians = {phase: statistics.median(values) for phase, values in seconds.items()}
    return {"size": size, "params_M": params / 1e6, "context_len": context_len, **medians}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a text file, one name per line")
    parser.add_argument(
        "--sizes", type=json.loads, default=SIZES, help="JSON list of constants to override"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"{args.data} is not a file; pass a text file such as names.txt")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    with tempfile.TemporaryDirectory(prefix="handover-cost-home-") as home:
        prepared = prepare(args.data.stem, "char", source_path=str(args.data), home=home)
        val_path = sealed_val_path(prepared.data_dir)
        rows = [measure(size, prepared.data_dir, val_path, args.repeats) for size in args.sizes]
    print(f"{'size':<44} {'params':>7} " + " ".join(f"{p:>16}" for p in PHASES))
    for row in rows:
        label = json.dumps(row["size"]) if row["size"] else "the recipe's defaults"
        cells = " ".join(f"{row[p]:>15.2f}s" for p in PHASES)
        print(f"{label:<44} {row['params_M']:>6.2f}M {cells}")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
