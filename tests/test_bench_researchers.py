"""bench/researchers.py's bookkeeping: seeds split over invocations merge into one report, and
only results of the same data, budget and session limit merge. The sessions themselves take
minutes and are the benchmark, not a test."""

import json
from pathlib import Path

import pytest
from tests_support import load_bench_script

from autolab.errors import UsageError


def raw_result(tmp_path: Path, seed: int, final: dict[str, float], **over) -> Path:
    """One invocation's raw result, as researchers.py writes it, for `seed`."""
    sessions = [
        {"researcher": name, "seed": seed, "status": "succeeded", "reason": "",
         "detuned_bpb": 3.5, "final_bpb": bpb, "overhead_s": 1.0, "train_py_overhead_s": 0.5,
         "autolab_overhead_s": 0.5, "session_seconds": 150.0, "runs": 20,
         "candidates": 15, "pruned": 3 if name == "search+prune" else 0, "experiments": []}
        for name, bpb in final.items()
    ]  # fmt: skip
    raw = {"args": {}, "budget_seconds": 5.0, "data": "names (char)",
           "limit": "150s per session", "fixture": {"DEPTH": 1},
           "defaults": [{"seed": seed, "val_bpb": 3.4, "wall_seconds": 7.0}],
           "sessions": sessions, **over}  # fmt: skip
    path = tmp_path / f"researchers-{seed}-{len(over)}.json"
    path.write_text(json.dumps(raw))
    return path


def test_merged_seeds_give_one_median_per_researcher(tmp_path):
    bench = load_bench_script("researchers")
    paths = [
        raw_result(tmp_path, seed, {"search": s, "search+prune": p})
        for seed, s, p in [(0, 3.30, 3.28), (1, 3.20, 3.29), (2, 3.25, 3.27)]
    ]
    raw = bench.merge_results(paths)
    assert [d["seed"] for d in raw["defaults"]] == [0, 1, 2]
    by_name = bench.summarize(raw["sessions"], {0: 3.4, 1: 3.4, 2: 3.4}, 5.0)
    assert by_name["search"]["median_final_bpb"] == pytest.approx(3.25)
    assert by_name["search+prune"]["median_final_bpb"] == pytest.approx(3.28)
    assert by_name["search+prune"]["pruned"] == 9
    checks = dict(bench.verdicts(by_name, 5.0))
    assert (
        checks[
            "search+prune has a better median than search by more than 0.002 (+0.0300) "
            "and on most seeds (1 of 3)"
        ]
        is False
    )
    # search+prune is the same researcher: not one of those search must beat
    assert not any(text.startswith("search has the best median") for text in checks)


def test_merge_refuses_a_seed_twice_and_other_settings(tmp_path):
    bench = load_bench_script("researchers")
    first = raw_result(tmp_path, 0, {"search": 3.3})
    with pytest.raises(UsageError, match="a seed comes twice"):
        bench.merge_results([first, raw_result(tmp_path, 0, {"search": 3.2}, args={"x": 1})])
    other_budget = raw_result(tmp_path, 1, {"search": 3.2}, budget_seconds=10.0)
    with pytest.raises(UsageError, match="differ in budget_seconds"):
        bench.merge_results([first, other_budget])


def test_the_title_says_what_ended_each_session():
    bench = load_bench_script("researchers")
    assert bench.session_limit(20, None) == "20 experiments"
    assert bench.session_limit(None, 150.0) == "150s per session"
    assert bench.session_limit(8, 150.0) == "8 experiments, 150s per session"


def test_the_replay_counts_what_each_reference_would_prune(tmp_path):
    replay = load_bench_script("prune_replay")

    def run(number, kind, status, losses, description=""):
        curve = [[p, loss] for p, loss in zip((0.25, 0.5, 0.75, 1.0), losses, strict=False)]
        return {"number": number, "kind": kind, "status": status, "description": description,
                "dev_curve": curve}  # fmt: skip

    session = {"experiments": [
        run(1, "baseline", "keep", [2.50, 2.40, 2.35, 2.30]),
        run(2, "baseline", "keep", [2.51, 2.41, 2.36, 2.31]),
        # hopeless against both references at 25%: 2.70 > 2.505 + 2% of it
        run(3, "candidate", "discard", [2.70, 2.50, 2.40, 2.35]),
        # a win; its re-check makes the best's curve two runs
        run(4, "candidate", "keep", [2.30, 2.20, 2.15, 2.10]),
        run(5, "recheck", "keep", [2.31, 2.21, 2.16, 2.11], "re-check of exp 4 (seed 1004)"),
        # fine against the baselines, hopeless against the new best (2.305 + 2%) at 25%
        run(6, "candidate", "discard", [2.45, 2.38, 2.33, 2.29]),
    ]}  # fmt: skip
    counts = replay.replay(session, budget=4.0)
    assert counts["candidates"] == 3
    assert counts["baseline"] == {"pruned": 1, "pruned_keeps": 0, "seconds_saved": 3.0}
    assert counts["best"]["pruned"] == 2 and counts["best"]["pruned_keeps"] == 0
    assert counts["best"]["seconds_saved"] == 6.0


@pytest.mark.parametrize(
    ("pruned_finals", "passes"),
    [
        ([3.28, 3.18, 3.23], True),  # better by 0.02 on every seed
        ([3.2985, 3.1985, 3.2485], False),  # 0.0015 better: under min_delta, a tie
        ([3.31, 3.21, 3.10], False),  # a median 0.04 better, but worse on 2 of 3 seeds
    ],
)
def test_pruning_wins_only_beyond_min_delta_and_on_most_seeds(tmp_path, pruned_finals, passes):
    bench = load_bench_script("researchers")
    paths = [
        raw_result(tmp_path, seed, {"search": s, "search+prune": p})
        for seed, s, p in zip(range(3), [3.30, 3.20, 3.25], pruned_finals, strict=True)
    ]
    raw = bench.merge_results(paths)
    by_name = bench.summarize(raw["sessions"], {0: 3.4, 1: 3.4, 2: 3.4}, 5.0)
    verdict = [ok for text, ok in bench.verdicts(by_name, 5.0) if text.startswith("search+prune")]
    assert verdict == [passes]
