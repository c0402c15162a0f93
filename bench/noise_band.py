"""Noise-band benchmark: how much does the keep band swing from session to session?

Runs `--sessions` research sessions one after another in one workspace (the gpt recipe on names,
`--budget` per run), each only measuring its baseline (its researcher proposes nothing), each
with its own seeds, as `autolab research` runs them by default: the first alone with three
baseline runs, the later ones with two, their spread pooled with the earlier sessions'.

For each session it reports the band the old rule would have used (max(min_delta, k x the
spread of its first two runs alone)) and the band recorded (the pooled one), and then the
spread of those bands across sessions: the lower, the steadier the keep rule.

    .venv/bin/python bench/noise_band.py --sessions 5 --budget 2s

Raw results go to bench/out/noise_band-<timestamp>.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.durations import parse_duration  # noqa: E402
from autolab.research.loop import ResearchSession, SessionOptions  # noqa: E402
from autolab.research.policy import Noise, Policy  # noqa: E402
from autolab.track.ledger import Ledger  # noqa: E402
from autolab.workspace import init_workspace, load_workspace  # noqa: E402

OUT = REPO / "bench" / "out"


class Nothing:
    """A researcher with nothing to try: the session measures its baseline and ends."""

    name = "none"

    def propose(self, context):
        return None


def run(root: Path, sessions: int, budget: float) -> list[dict]:
    workspace, policy, rows = load_workspace(root), Policy(), []
    with Ledger.for_workspace(root) as ledger:
        for i in range(sessions):
            options = SessionOptions(tag=f"noise-{i}", budget_seconds=budget, seed=100 * i)
            session = ResearchSession(workspace, Nothing(), options, ledger)
            session.start()
            session.run()
            scores = [v.val_bpb for v in ledger.experiments(session.session_id)
                      if v.kind == "baseline"]  # fmt: skip
            alone = Noise.measure(scores[:2])  # what the old rule (2 runs, no pool) recorded
            st = ledger.standings(options.tag)
            rows.append({"session": i, "scores": scores, "band_before": policy.band(alone),
                         "band_after": st.reference.band, "spread_after": st.reference.spread,
                         "dof": st.reference.dof, "interval": st.reference.interval})  # fmt: skip
            print(
                f"session {i}: {len(scores)} runs, band alone {rows[-1]['band_before']:.4f}, "
                f"pooled {rows[-1]['band_after']:.4f} ({st.reference.dof} dof)",
                flush=True,
            )
    return rows


def summary(rows: list[dict], key: str) -> str:
    bands = [r[key] for r in rows]
    return (f"min {min(bands):.4f}  max {max(bands):.4f}  sd {statistics.stdev(bands):.4f}  "
            f"max/min {max(bands) / min(bands):.1f}x")  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5, help="sessions in a row (default 5)")
    parser.add_argument("--budget", default="2s", help="training time per run (default 2s)")
    parser.add_argument("--home", type=Path, help="AUTOLAB_HOME for prepared data (default: temp)")
    args = parser.parse_args(argv)
    if args.sessions < 2:
        parser.error("--sessions must be at least 2: a spread across sessions needs two")
    budget = parse_duration(args.budget)
    with tempfile.TemporaryDirectory() as tmp:
        # ResearchSession prepares its data from $AUTOLAB_HOME.
        os.environ["AUTOLAB_HOME"] = str((args.home or Path(tmp) / "home").resolve())
        root = Path(tmp) / "ws"
        init_workspace(root, dataset="names", source=None, tokenizer="char", recipe="gpt",
                       budget=args.budget)  # fmt: skip
        started = time.time()
        rows = run(root, args.sessions, budget)
    print(f"band, 2 runs alone (before): {summary(rows, 'band_before')}")
    print(f"band, pooled (after):        {summary(rows, 'band_after')}")
    OUT.mkdir(exist_ok=True)
    out = OUT / f"noise_band-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"budget": budget, "seconds": time.time() - started,
                               "sessions": rows}, indent=1))  # fmt: skip
    print(f"raw: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
