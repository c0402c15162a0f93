"""Sampling a finished run in a child of the evaluator's zygote, from the side that runs it.

`autolab train` prints a few samples after its runs. Sampled in the command's own process, they
cost a torch import and torch.export's (~3 s on 2 CPU cores) before the first token; the
evaluator's zygote has both loaded already and runs referee code only, outside any experiment's
sandbox, so a child forked from it samples at the cost of loading the program. The child prints
its texts as the last line of its output, one JSON object; anything before it (a warning that
the run's sampler was passed over) is passed on to stderr. How samples are shown is here too,
for the same reason: it needs no torch.
"""

import json
import subprocess
import sys
from pathlib import Path

from autolab.errors import UsageError
from autolab.zygote.client import Zygote, ask_child

TIMEOUT_S = 600.0  # a big model on a slow CPU; a hung child must not hang the command


def forked_samples(
    zygote: Zygote, run_dir: Path, data_dir: Path, count: int, seed: int, threads: int = 0
) -> list[str]:
    """`count` samples of the model `run_dir` handed over, as `autolab.sampling.sample_texts`
    gives them; raises UsageError with the child's one-line reason when it cannot sample."""
    job = {
        "run_dir": str(run_dir),
        "data_dir": str(data_dir),
        "count": count,
        "seed": seed,
        "threads": threads,
    }
    try:
        lines, returncode = ask_child(zygote, "sample", job, "autolab-sample-", TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UsageError(f"sampling took over {TIMEOUT_S:.0f}s; try `autolab sample`") from None
    try:
        said = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = lines[-1] if lines else f"exit code {returncode}, no output"
        raise UsageError(f"sampling failed: {tail}"[:500]) from None
    for line in lines[:-1]:
        print(line, file=sys.stderr, flush=True)
    if "error" in said:
        raise UsageError(said["error"])
    return said["texts"]


SAMPLE_RULE = "── sample {i}/{n} ──"  # between passages; a blank line may be part of a passage


def format_samples(texts: list[str]) -> str:
    """Samples for a terminal or a pipe: one-line samples (names) one per line, passages each
    under a numbered rule, so two samples never run together."""
    texts = [t.strip("\n") for t in texts]
    if all("\n" not in t for t in texts):
        return "\n".join(texts)
    return "\n".join(
        f"{SAMPLE_RULE.format(i=i, n=len(texts))}\n{t}" for i, t in enumerate(texts, start=1)
    )
