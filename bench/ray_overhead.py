"""What the Ray path costs an experiment: overhead per run, local and through Ray, side by side.

The default gpt recipe on names trains `--runs` times each way, interleaved (local, ray, local,
...), both with the sandbox where it exists and warm zygotes, as a research session keeps them:
locally one `Workers` for the session; through Ray a local Ray instance started here
(`ray.init(num_cpus=2)`) whose worker process keeps its own, and the driver's evaluator scores
both. A first, cold run each way (zygotes importing torch, Ray starting a worker) is reported
apart and left out of the medians. Overhead is a run's wall time minus its training time; for
Ray it includes the task's scheduling, the shards' hash check on the node, the metrics queue and
sending the run directory back.

    .venv/bin/python bench/ray_overhead.py                    # 5 s budget, 3 runs each
    .venv/bin/python bench/ray_overhead.py --budget 20 --runs 4

Run it alone on the machine (`flock /tmp/cpu.lock ...`): on 2 cores anything else running
spoils both columns.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.cluster.runner import RayRunner, import_ray  # noqa: E402
from autolab.data import prepare  # noqa: E402
from autolab.experiment import run_experiment  # noqa: E402
from autolab.harness.settings import RunSettings  # noqa: E402
from autolab.sandbox.availability import choose_isolation  # noqa: E402
from autolab.workers import Workers  # noqa: E402

OUT = REPO / "bench" / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ray = import_ray()
    scratch = Path(tempfile.mkdtemp(prefix="autolab-bench-ray-"))
    data = prepare("names", "char", home=str(scratch / "home"))
    workspace = scratch / "ws"
    subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(workspace)],
        check=True, capture_output=True, env={"AUTOLAB_HOME": str(scratch / "home"),
                                              "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    train_py = workspace / "train.py"
    isolation = choose_isolation(None, print)
    started = time.time()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.time() - started:.1f}s", flush=True)
    workers = Workers(isolation, data.data_dir, data.val_path, "cpu", [data.val_path.parent])
    workers.start()
    started = time.time()
    runner = RayRunner("local", data.data_dir, "cpu", isolation)
    print(f"RayRunner (shards into the object store): {time.time() - started:.1f}s", flush=True)
    ways = {"local": run_experiment, "ray": runner}
    rows: list[dict] = []
    try:
        for run in range(args.runs + 1):  # run 0: cold
            for way, call in ways.items():
                settings = RunSettings(
                    data.data_dir, scratch / f"{way}-{run}", args.budget, "cpu", seed=run
                )
                result = call(train_py, settings, data.val_path, workers=workers)
                if result.status != "ok":
                    raise SystemExit(f"{way} run {run}: {result.status}: {result.reason}")
                trained = float(result.reported["training_seconds"])
                row = {
                    "way": way,
                    "run": run,
                    "cold": run == 0,
                    "wall_s": result.wall_seconds,
                    "trained_s": trained,
                    "overhead_s": result.wall_seconds - trained,
                    "node_s": result.flags.get("ray", {}).get("node_seconds"),
                    "val_bpb": result.val_bpb,
                    "isolation": result.isolation,
                }
                rows.append(row)
                node = f"  on the node {row['node_s']:6.2f}s" if row["node_s"] else ""
                print(
                    f"{way:5s} run {run}{' (cold)' if run == 0 else '       '}: wall "
                    f"{row['wall_s']:6.2f}s  trained {trained:6.2f}s  overhead "
                    f"{row['overhead_s']:5.2f}s{node}  val_bpb {result.val_bpb:.4f}",
                    flush=True,
                )
    finally:
        runner.close()
        workers.close()
        ray.shutdown()
    medians = {
        way: statistics.median(r["overhead_s"] for r in rows if r["way"] == way and not r["cold"])
        for way in ways
    }
    print(
        f"\nmedian overhead per warm run at {args.budget:g}s ({args.runs} runs each, "
        f"{isolation}): local {medians['local']:.2f}s, ray {medians['ray']:.2f}s, added by "
        f"Ray {medians['ray'] - medians['local']:+.2f}s"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"ray-overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "medians": medians, "runs": rows}, indent=2))
    print(f"raw results: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
