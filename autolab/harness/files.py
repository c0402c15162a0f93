"""What a run directory holds, by name: a contract between the training process, the runner, the
evaluator and the views. Kept apart from the code that writes them, which needs torch, so that
the runner and the views can find the files without loading it."""

from pathlib import Path

METRICS_FILE = "metrics.jsonl"  # one JSON object per logged step, appended live
RESULT_FILE = "result.json"  # the summary values the training process reports
MODEL_FILE = "model.pt2"  # the handed-over program the evaluator scores
SAMPLER_FILE = "sampler.pt2"  # the same weights for shorter inputs; only sampling loads it
MODEL_INFO_FILE = "model.json"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a reader (the runner, which copies files out
    as soon as they appear) never sees half a file."""
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    tmp.replace(path)
