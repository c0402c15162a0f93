"""The noise band: the spread pooled across sessions of one commit, budget and hardware
fingerprint, its 95% interval, a third baseline run with no history, and no comparison across
fingerprints. Sessions are real `autolab research` processes (mlp recipe, 1 s per run)."""

import json
import math
import statistics
import subprocess

import pytest
from tests_support import autolab, mlp_workspace

from autolab.dashboard.api import running_best_lines
from autolab.hardware import label as hardware_label
from autolab.report.chart import progress_chart
from autolab.research.policy import Noise, Policy, pooled_spread, spread_interval
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.track.standings import best_lines

BUDGET = "1s"


def test_pooled_spread_weights_each_session_by_its_degrees_of_freedom():
    # Sessions [3.00, 3.02] and [3.10, 3.12, 3.14]: squared deviations from their own means
    # sum to 0.0002 + 0.0008 over 1 + 2 degrees of freedom: sqrt(0.001 / 3).
    a, b = [3.00, 3.02], [3.10, 3.12, 3.14]
    spread, dof = pooled_spread([(statistics.stdev(a), 2), (statistics.stdev(b), 3)])
    assert dof == 3 and spread == pytest.approx(math.sqrt(0.001 / 3))
    # One run has no spread to give: it counts for nothing, and nothing gives (0, 0).
    assert pooled_spread([(statistics.stdev(a), 2), (0.0, 1)]) == pytest.approx((0.01414214, 1))
    assert pooled_spread([]) == (0.0, 0)


def test_the_spread_interval_is_chi_square_with_its_degrees_of_freedom():
    # With 2 degrees of freedom chi-square is exponential: its quantile q is -2 ln(1 - q), so the
    # 95% interval of s = 0.01 is sqrt(2 s^2 / (-2 ln 0.025)) .. sqrt(2 s^2 / (-2 ln 0.975)).
    low, high = spread_interval(0.01, 2)
    assert low == pytest.approx(math.sqrt(2e-4 / (-2 * math.log(0.025))))
    assert high == pytest.approx(math.sqrt(2e-4 / (-2 * math.log(0.975))))
    assert spread_interval(0.0, 0) is None  # one run: no estimate at all
    wide, narrow = spread_interval(0.01, 1), spread_interval(0.01, 10)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]  # more runs, a surer spread


def test_a_candidate_on_other_hardware_is_not_compared():
    here = {"device": "cpu", "cpu": "A", "threads": 2, "torch": "2.9", "workers": 1}
    there = {**here, "threads": 1}
    policy, noise = Policy(), Noise(3.01, 0.001, 3)
    verdict, reason = policy.judge("ok", "", 2.5, 3.01, noise, there, here)
    assert verdict == "discard" and "other hardware" in reason and "1 thread ·" in reason
    assert policy.judge("ok", "", 2.5, 3.01, noise, here, here)[0] == "keep"
    # A fingerprint not recorded (an older ledger) cannot tell them apart: compared as before.
    assert policy.judge("ok", "", 2.5, 3.01, noise, None, here)[0] == "keep"
    assert policy.judge("crash", "boom", None, 3.01, noise, there, here) == ("crash", "boom")


# -- real sessions --------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path):
    return mlp_workspace(tmp_path, BUDGET)


def research(workspace, tag, *args):
    path, home = workspace
    start = subprocess.run(["git", "-C", str(path), "branch", "--show-current"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    done = autolab("research", "--no-prune",
                   "-C", str(path), "--plain", "--tag", tag, "--max-experiments",
                   "1", "--confirm", "0", *args, home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The next session starts from the same commit, whatever this one kept.
    subprocess.run(["git", "-C", str(path), "checkout", "-q", start], check=True)
    return done


def test_a_second_session_pools_the_first_ones_spread_and_status_shows_how_sure(workspace):
    path, home = workspace
    research(workspace, "a")  # no history: three baseline runs
    research(workspace, "b")  # from the same commit on the same machine: two, pooled
    with Ledger(path / ".autolab" / "ledger.db") as ledger:
        a, b = ledger.sessions()
        runs = {s.id: [v.val_bpb for v in ledger.experiments(s.id) if v.kind == "baseline"]
                for s in (a, b)}  # fmt: skip
        baselines = [v for v in ledger.experiments() if v.kind == "baseline"]
        commits = {v.commit_sha for v in baselines}
        fingerprints = {json.dumps(v.flags["hardware"]) for v in baselines}
    assert (len(runs[a.id]), len(runs[b.id])) == (3, 2)
    assert len(commits) == 1 and len(fingerprints) == 1
    assert a.noise.spread == pytest.approx(statistics.stdev(runs[a.id]))
    # By hand: squared deviations of both sessions over 2 + 1 degrees of freedom.
    squares = sum((x - statistics.fmean(r)) ** 2 for r in runs.values() for x in r)
    assert b.noise.spread == pytest.approx(math.sqrt(squares / 3))
    assert b.noise.runs == 2 and b.noise.baseline_bpb == pytest.approx(statistics.fmean(runs[b.id]))

    status = json.loads(autolab("status", "-C", str(path), "--json", home=home).stdout)
    assert (status["noise_dof"], status["noise_pooled_sessions"]) == (3, 2)
    assert status["noise_spread"] == pytest.approx(b.noise.spread)
    low, high = status["noise_interval"]
    assert (low, high) == pytest.approx(spread_interval(b.noise.spread, 3))
    wide = {"COLUMNS": "200"}  # the panel's lines unwrapped
    shown = " ".join(autolab("status", "-C", str(path), home=home, env=wide).stdout.split())
    assert f"95% {low:.4f}-{high:.4f} from 3 degrees of freedom, pooled over 2 sessions" in shown

    # An explicit --baseline-runs wins; the branch a was measured alone.
    research(workspace, "c", "--baseline-runs", "1")
    with Ledger(path / ".autolab" / "ledger.db") as ledger:
        c = ledger.sessions()[-1]
        assert len([v for v in ledger.experiments(c.id) if v.kind == "baseline"]) == 1
        assert c.noise.spread == pytest.approx(b.noise.spread)  # one run adds nothing
        assert ledger.standings("a").reference.pooled_sessions == 1
        assert ledger.standings("a").reference.dof == 2


def test_each_fingerprint_has_its_own_reference_and_best(tmp_path):
    """A branch measured on hardware A, continued on slower B: B's reference is its own
    baseline runs', B's candidates meet B's best only (A's lower scores are not better, only
    measured elsewhere), and every Δ is against the run's own reference."""
    a = {"device": "cpu", "cpu": "A", "threads": 2, "torch": "2.9", "workers": 1}
    b = {**a, "threads": 1, "workers": 2}
    with Ledger(tmp_path / "ledger.db") as ledger:
        number = 0

        def run(sid, kind, score, status, hardware):
            nonlocal number
            number += 1
            ledger.add_experiment(ExperimentRecord(number, sid, kind, f"c{number}", kind, "",
                                                   "search", seed=number))  # fmt: skip
            ledger.add_result(number, ResultRecord(status, "", score, flags={"hardware": hardware}))
            return number

        first = ledger.start_session("t", "autolab/t", "search", 2.0, "cpu", {"base_commit": "c"})
        run(first, "baseline", 3.00, "keep", a)
        run(first, "baseline", 3.02, "keep", a)
        ledger.record_noise(first, 3.01, 0.014, 2)
        kept_a = run(first, "candidate", 2.90, "keep", a)
        ledger.end_session(first, "succeeded")
        second = ledger.start_session("t", "autolab/t", "search", 2.0, "cpu",
                                      {"base_commit": "c", "continues": first})  # fmt: skip
        run(second, "baseline", 3.20, "keep", b)
        run(second, "baseline", 3.22, "keep", b)
        ledger.record_noise(second, 3.21, 0.014, 2)
        kept_b = run(second, "candidate", 3.15, "keep", b)
        worse_b = run(second, "candidate", 3.30, "discard", b)
        ledger.end_session(second, "succeeded")
        standings = ledger.standings("t")
        ledger_views = ledger.experiments()
    assert standings.reference.bpb == pytest.approx(3.21) and standings.reference.hardware == b
    assert standings.best_number == kept_b and standings.best_score == pytest.approx(3.15)
    assert standings.delta == pytest.approx(3.15 - 3.21)
    on_a, on_b, worse = (standings.row(n) for n in (kept_a, kept_b, worse_b))
    assert on_a.delta == pytest.approx(2.90 - 3.01) and on_a.best_before == pytest.approx(3.01)
    assert not on_a.is_best  # lower, but measured on A: it never meets B's runs
    assert on_b.best_before == pytest.approx(3.21) and on_b.delta == pytest.approx(3.15 - 3.21)
    assert on_b.is_best
    assert worse.delta_best_before == pytest.approx(3.30 - 3.15)
    # The progress charts' running best: one line per fingerprint, never A's best joined to B's.
    line_a, line_b = best_lines(standings, worse_b)
    assert (line_a.hardware, line_a.current, line_b.hardware, line_b.current) == (a, False, b, True)
    assert line_a.xs == [0.5, 1, 2, 3, 3.5]
    assert line_a.ys == pytest.approx([3.01, 3.01, 3.01, 2.90, 2.90])
    assert line_b.xs == [3.5, 4, 5, 6, 7, 7.5]
    assert line_b.ys == pytest.approx([3.21, 3.21, 3.21, 3.15, 3.15, 3.15])
    lines = running_best_lines(standings, worse_b + 2)  # what the dashboard draws
    assert [line["current"] for line in lines] == [False, True] and lines[1]["x"][-1] == 9.5
    assert lines[0]["fingerprint"] == hardware_label(a) != lines[1]["fingerprint"]
    chart = progress_chart(ledger_views, standings, tmp_path / "progress.png")
    assert chart.stat().st_size > 0
