"""The sealed evaluator, run as `python -m autolab.evaluation.sealed` in a fresh process.

It loads the model an experiment handed over (an exported program: graph and weights, no
Python source from the workspace), feeds it the validation split, which the training process
was never told about, applies log-softmax itself and computes val_bpb with autolab's own code.
It also probes causality and checks the outputs are well-formed. It prints one JSON object.

In the sandbox (autolab.sandbox) the experiment cannot see the sealed split, the source text or
this process. With process isolation, the fallback, it runs with the same user rights as the
experiment, and does not protect against a training process that finds the validation shards on
disk by searching for them (the runner detects reads of the shard file; see autolab.experiment)
or rebuilds the split from the public source text itself. The program it loads is
refused unless it holds only tensor operators and raw weights (autolab.harness.program_check).
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from autolab.evaluation.causality import find_leak, probe_rows
from autolab.harness.data import read_meta, read_token_bytes, read_tokens
from autolab.harness.evaluate import EVAL_MAX_TOKENS, evaluate_bpb
from autolab.harness.handover import EXPORT_BATCH, load_model
from autolab.harness.program_check import RefusedProgram


def first_line(err: Exception) -> str:
    """An exception as one line for a verdict's reason (torch's messages run to many)."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:250]


def evaluate_run(run_dir: Path, data_dir: Path, val_path: Path, device: str) -> dict:
    started = time.time()
    meta = read_meta(data_dir)
    try:
        model, info = load_model(run_dir, device)
    except RefusedProgram as err:
        return {"status": "invalid", "reason": f"handed-over program refused: {err}"[:300]}
    except Exception as err:  # the handover is the experiment's output: any failure is data
        return {"status": "invalid", "reason": f"handed-over model unreadable: {first_line(err)}"}
    if info.get("vocab_size") != meta["vocab_size"]:
        return {"status": "invalid", "reason": "model vocabulary does not match the data"}
    val = read_tokens(val_path, meta)
    context_len = int(info["context_len"])
    # Where the probes look is drawn from a secret of this process's own, never from anything
    # in the run directory or the environment, which the experiment could have written.
    generator = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    batch = int(info.get("batch", EXPORT_BATCH))
    start, rows = probe_rows(val[: EVAL_MAX_TOKENS + 1], context_len, batch, generator)
    try:
        base = model(rows.to(device)).float()
        if tuple(base.shape) != (*rows.shape, meta["vocab_size"]):
            return {"status": "invalid", "reason": f"model returned shape {tuple(base.shape)}"}
        if leak := find_leak(model, rows, base, meta["vocab_size"], generator):
            return {"status": "invalid", "reason": leak}
        # The probes' rows are scored chunks: their logits are scored as they are, one call fewer.
        known = {} if start is None else {start + r * context_len: base[r] for r in range(batch)}
        val_bpb = evaluate_bpb(
            model, val, read_token_bytes(data_dir), context_len, device, known=known
        )
    except Exception as err:
        return {"status": "invalid", "reason": f"handed-over model failed: {first_line(err)}"}
    if not math.isfinite(val_bpb):
        return {"status": "invalid", "reason": f"val_bpb is {val_bpb}"}
    return {"status": "ok", "val_bpb": val_bpb, "eval_seconds": time.time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    with torch.inference_mode():
        result = evaluate_run(args.run_dir, args.data_dir, args.val, args.device)
    print(json.dumps(result), flush=True)
    os._exit(0)  # the verdict is out; skip torch's interpreter teardown (about half a second)


if __name__ == "__main__":
    main()
