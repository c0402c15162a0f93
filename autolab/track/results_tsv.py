"""results.tsv, autoresearch's log of experiments. The one owner of this format.

    commit  val_bpb  memory_gb  status  description

Tab-separated, a header line, then one row per finished experiment in number order: the short
commit (7 characters), the score with 6 decimals (`track.standings`: the sealed val_bpb, or the
mean over its re-check when it had one; 0.000000 when there is none, as autoresearch writes for a
crash), peak memory in GB with 1 decimal, the status, and the description on one line. The
file is a view: it is rebuilt from the ledger, never edited.
"""

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from autolab.track.ledger import ExperimentView, Ledger

HEADER = ("commit", "val_bpb", "memory_gb", "status", "description")


def _one_line(text: str) -> str:
    return text.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")


def format_row(view: ExperimentView) -> str:
    score = view.score if view.score is not None and math.isfinite(view.score) else 0.0
    memory_gb = (view.peak_memory_mb or 0.0) / 1024
    commit = (view.commit_sha or "")[:7]
    return "\t".join(
        [commit, f"{score:.6f}", f"{memory_gb:.1f}", view.status, _one_line(view.description)]
    )


def format_results_tsv(views: Iterable[ExperimentView]) -> str:
    """The whole file; experiments still running are left out."""
    finished = sorted((v for v in views if v.status != "running"), key=lambda v: v.number)
    return "".join(line + "\n" for line in ["\t".join(HEADER), *map(format_row, finished)])


def parse_results_tsv(text: str) -> list[dict]:
    """The file -> one dict per row with HEADER's keys; val_bpb and memory_gb as floats."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise ValueError(f"not a results.tsv: the header must be {' '.join(HEADER)!r}")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(HEADER):
            raise ValueError(f"results.tsv line {lineno}: {len(cells)} columns, expected 5")
        row = dict(zip(HEADER, cells, strict=True))
        row["val_bpb"] = float(row["val_bpb"])
        row["memory_gb"] = float(row["memory_gb"])
        rows.append(row)
    return rows


def write_results_tsv(ledger: Ledger, path: str | Path, session_id: int | None = None) -> Path:
    """Rewrite `path` from the ledger: a temp file in the same folder, then a rename."""
    path = Path(path)
    text = format_results_tsv(ledger.experiments(session_id))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
