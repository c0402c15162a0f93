"""What `research --prune` would have stopped in sessions that ran without it.

bench/researchers.py keeps every run's dev-loss curve in its raw results. For each session that
ran without pruning, this script replays the pruning rule over its candidates' full curves and
counts what the rule would have stopped, and how many of those went on to be kept: a win the
rule would have thrown away. Two references:

- `baseline`: the rule as `research --prune` has it (research/pruning.py): the session's
  baseline runs' curves, margin max(FLOOR x reference, K x their spread);
- `best`: the issue's wording, the current best's curve (the last kept candidate, its re-check's
  curve beside it when it had one; the baselines before any keep), with the same margin rule.

Seconds saved: what the stopped runs would not have trained (budget x (1 - progress at the
stop)); the run's fixed overhead (start-up, export, scoring) is not saved by a prune.

    .venv/bin/python bench/prune_replay.py bench/out/researchers-*.json
"""

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolab.research.pruning import Curve, Reference  # noqa: E402

RECHECK = re.compile(r"re-check of exp (\d+)")  # the loop's description of a re-check


def first_prune(reference: Reference, curve: Curve):
    """The verdict at the first point of `curve` the rule prunes, or None."""
    for progress, loss in curve.points:
        verdict = reference.judge(progress, loss)
        if verdict is not None and verdict.prune:
            return verdict
    return None


def replay(session: dict, budget: float) -> dict:
    """For one session: candidates, and per reference what would be pruned and lost."""
    runs = session["experiments"]
    curves = {e["number"]: Curve(tuple(map(tuple, e["dev_curve"]))) for e in runs}
    baselines = tuple(curves[e["number"]] for e in runs if e["kind"] == "baseline")
    rechecks = {  # the re-checked experiment's number: its re-check's
        int(m.group(1)): e["number"]
        for e in runs
        if e["kind"] == "recheck" and (m := RECHECK.match(e["description"]))
    }
    best = baselines
    counts = {
        ref: {"pruned": 0, "pruned_keeps": 0, "seconds_saved": 0.0} for ref in ("baseline", "best")
    }
    candidates = 0
    for e in runs:
        if e["kind"] != "candidate" or e["status"] not in ("keep", "discard"):
            continue
        candidates += 1
        for name, reference in (("baseline", Reference(baselines)), ("best", Reference(best))):
            verdict = first_prune(reference, curves[e["number"]])
            if verdict:
                counts[name]["pruned"] += 1
                counts[name]["pruned_keeps"] += e["status"] == "keep"
                counts[name]["seconds_saved"] += budget * (1 - verdict.progress)
        if e["status"] == "keep":
            again = rechecks.get(e["number"])
            best = (curves[e["number"]],) + ((curves[again],) if again else ())
    return {"candidates": candidates, **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="researchers-*.json files")
    args = parser.parse_args(argv)
    print(
        f"{'file':<34} {'session':<16} {'cands':>5}  {'baseline ref: pruned (keeps) s':>31}  "
        f"{'best ref: pruned (keeps) s':>27}"
    )
    total = {"baseline": [0, 0, 0, 0.0], "best": [0, 0, 0, 0.0]}
    for path in args.results:
        raw = json.loads(path.read_text())
        for session in raw["sessions"]:
            if session["researcher"] == "search+prune" or "experiments" not in session:
                continue
            if not any(e.get("dev_curve") for e in session["experiments"]):
                continue  # written before the curves were kept
            r = replay(session, raw["budget_seconds"])
            cells = []
            for ref in ("baseline", "best"):
                c = r[ref]
                cells.append(f"{c['pruned']:>3} ({c['pruned_keeps']}) {c['seconds_saved']:5.1f}s")
                t = total[ref]
                t[0] += r["candidates"]
                t[1] += c["pruned"]
                t[2] += c["pruned_keeps"]
                t[3] += c["seconds_saved"]
            name = f"{session['researcher']} {session['seed']}"
            print(
                f"{path.name:<34} {name:<16} {r['candidates']:>5}  {cells[0]:>31}  {cells[1]:>27}"
            )
    for ref, (cands, pruned, keeps, saved) in total.items():
        print(
            f"{ref} reference: {pruned} of {cands} candidates pruned, {keeps} of them kept "
            f"in the session; {saved:.0f} s of training saved"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
