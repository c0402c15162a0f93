"""What the ledger's one writer spends per experiment, and how that grows with the ledger.

The research loop's `Recorder` writes every row of a session: per experiment, the experiment
row and its `created` and `started` events; the step metrics in batches of 4 (the harness logs
every METRICS_INTERVAL_S, so a B-second run sends 2B records), each batch with a `step` event;
the `evaluation` and `finished` events; then the result row, the verdict event (which reads the
branch's standings) and results.tsv rewritten from the ledger. This script makes exactly those
calls on a real Ledger (SQLite, WAL, hash chain) in a temporary workspace, with no training,
and times them per experiment as the ledger fills up. It is the figure behind docs/scaling.md's
"ledger write rate": with W workers and B-second experiments, the writer is busy
(W / B) x (seconds per experiment) of the time.

    .venv/bin/python bench/ledger_writes.py                       # 300 s runs, 300 experiments
    .venv/bin/python bench/ledger_writes.py --budget 60 --experiments 100

Raw results go to bench/out/ledger-writes-<timestamp>.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.experiment import ExperimentResult  # noqa: E402
from autolab.harness.run import METRICS_INTERVAL_S  # noqa: E402
from autolab.research.recorder import Recorder, result_record  # noqa: E402
from autolab.track.ledger import ExperimentRecord, Ledger  # noqa: E402

OUT = REPO / "bench" / "out"
BATCH = 4  # metric records per write: the loop flushes every 4 (research/loop.py's on_metrics)


def record_one(recorder: Recorder, session_id: int, number: int, records: int) -> dict:
    """Every write the loop makes for one experiment; seconds per part."""
    times = {}
    started = time.perf_counter()
    recorder.experiment(
        ExperimentRecord(
            number,
            session_id,
            "candidate",
            f"{number:040x}",
            f"change {number}",
            researcher="search",
            seed=number,
            params={"MATRIX_LR": 0.02 * number},
        )
    )
    recorder.event("started", f"exp {number} started (seed {number})", number)
    times["created"] = time.perf_counter() - started

    started = time.perf_counter()
    batch = []
    for step in range(records):
        progress = (step + 1) / records
        batch.append(
            {
                "step": 10 * step,
                "progress": progress,
                "loss": 3.0 - progress,
                "lr": 0.02,
                "tokens_per_sec": 5e4,
                "memory_mb": 900.0,
                "training_seconds": progress * 300,
                "time": time.time(),
                "tokens": 8192 * step,
            }
        )
        if len(batch) >= BATCH or step == records - 1:
            recorder.metrics(number, batch)
            batch = []
    times["metrics"] = time.perf_counter() - started

    started = time.perf_counter()
    val_bpb = 3.0 - 0.001 * number
    recorder.event(
        "evaluation", f"exp {number} sealed val_bpb {val_bpb:.6f}", number, {"val_bpb": val_bpb}
    )
    recorder.event("finished", f"exp {number} finished: ok", number, {"status": "ok"})
    result = ExperimentResult(
        "ok",
        val_bpb=val_bpb,
        wall_seconds=301.0,
        reported={
            "val_bpb": val_bpb,
            "training_seconds": 300.0,
            "total_seconds": 300.5,
            "num_steps": 10 * records,
        },
    )
    status = "keep" if number % 5 == 0 else "discard"
    recorder.result(
        number, result, result_record(result, status, "bench", val_bpb, "cpu", "sandbox")
    )
    times["result"] = time.perf_counter() - started
    times["total"] = sum(times.values())
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per run (300)")
    parser.add_argument("--experiments", type=int, default=300, help="experiments to record")
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.experiments < 10:
        parser.error("give --budget > 0 and --experiments >= 10")
    records = max(1, round(args.budget / METRICS_INTERVAL_S))
    rows = []
    with tempfile.TemporaryDirectory(prefix="autolab-ledger-bench-") as tmp:
        root = Path(tmp)
        with Ledger.for_workspace(root) as ledger:
            session_id = ledger.start_session(
                "bench", "autolab/bench", "search", args.budget, "cpu", {}
            )
            recorder = Recorder(ledger, "bench", root / "results.tsv")
            recorder.session_id = session_id
            for number in range(1, args.experiments + 1):
                rows.append(record_one(recorder, session_id, number, records))
        size_mb = (root / ".autolab" / "ledger.db").stat().st_size / 2**20

    # Per decile of the ledger's growth: the median cost of one experiment's writes.
    tenth = args.experiments // 10
    print(
        f"{args.experiments} experiments of {args.budget:g} s ({records} metric records "
        f"each, in batches of {BATCH}); ledger {size_mb:.1f} MB at the end"
    )
    print(
        f"{'experiments':>12} {'created ms':>11} {'metrics ms':>11} {'result ms':>10} "
        f"{'total ms':>9}"
    )
    deciles = []
    for i in range(10):
        part = rows[i * tenth : (i + 1) * tenth]
        med = {k: 1000 * statistics.median(r[k] for r in part) for k in part[0]}
        deciles.append({"from": i * tenth + 1, "to": (i + 1) * tenth, **med})
        print(
            f"{i * tenth + 1:>5}-{(i + 1) * tenth:<6} {med['created']:>11.1f} "
            f"{med['metrics']:>11.1f} {med['result']:>10.1f} {med['total']:>9.1f}"
        )
    last = deciles[-1]["total"] / 1000
    print(
        f"writer busy per worker: {last / args.budget:.2%} of the time (last decile); one "
        f"writer saturates at ~{args.budget / last:.0f} workers of {args.budget:g} s runs"
    )

    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"ledger-writes-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "metric_records": records,
                "ledger_mb": size_mb,
                "deciles": deciles,
                "runs": rows,
            },
            indent=2,
        )
    )
    print(f"raw results: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
