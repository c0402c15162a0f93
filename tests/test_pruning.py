"""Stop hopeless runs early (issue 12 §3): the decision on synthetic curves, what the search
researcher is told of a pruned run, and a real session whose bad candidate is pruned.

The real sessions: the mlp recipe for 2 s per run; a shell agent cuts the learning rate
10,000-fold, so the candidate's dev loss at 1/4 of its budget is far above the baseline runs';
and once a change was kept, such a candidate is judged against the kept run's curve instead.
"""

import json
import math
import sys

import pytest
from test_search import RECIPE, context
from tests_support import autolab, mlp_workspace

from autolab.cli import build_parser
from autolab.commands.research import prunes
from autolab.research.constants import parse_constants
from autolab.research.proposal import Outcome, Proposal
from autolab.research.pruning import FLOOR, HOLD, PRUNE_BEFORE, Curve, K, Reference, Watch
from autolab.research.search import SearchResearcher, search_space
from autolab.track.ledger import RESULT_STATUSES, SCORED_STATUSES, Ledger


def curve(*points) -> Curve:
    return Curve(tuple(points))


def decaying(scale: float, offset: float = 0.0) -> Curve:
    """A dev-loss curve like a real one: 3.3 falling towards 2.0, measured at the harness's
    points (slightly past each quarter, as a step lands)."""
    return curve(*((p, offset + 2.0 + 1.3 * math.exp(-scale * p))
                   for p in (0.26, 0.51, 0.76, 1.0)))  # fmt: skip


def test_curve_interpolates_between_points_and_holds_only_near_its_ends():
    c = curve((0.25, 3.0), (0.5, 2.0), (1.0, 1.0))
    assert c.at(0.375) == pytest.approx(2.5)
    assert c.at(0.75) == pytest.approx(1.5)
    assert c.at(0.25 - HOLD / 2) == 3.0  # before the first point, within HOLD: the first point
    assert c.at(0.25 - 2 * HOLD) is None  # farther out: nothing to say
    assert curve().at(0.5) is None
    rows = [{"progress": 0.1, "loss": 3.0}, {"progress": 0.5, "dev_loss": 2.0, "loss": 2.1},
            {"progress": 0.25, "dev_loss": 3.0}, {"progress": 0.3, "dev_loss": None}]  # fmt: skip
    assert Curve.from_metrics(rows).points == ((0.25, 3.0), (0.5, 2.0))


def test_margin_is_k_spreads_or_the_floor_whichever_is_larger():
    tight = Reference((curve((0.25, 3.0)), curve((0.25, 3.0))))
    v = tight.judge(0.25, 3.0)
    assert (v.reference, v.margin, v.runs) == (3.0, pytest.approx(FLOOR * 3.0), 2)
    wide = Reference((curve((0.25, 2.8)), curve((0.25, 3.2))))
    v = wide.judge(0.25, 3.0)
    assert v.margin == pytest.approx(K * math.sqrt(0.08))  # stdev of 2.8, 3.2 = 0.2828
    assert not v.prune
    assert wide.judge(0.25, 3.0 + v.margin - 1e-9).prune is False
    assert wide.judge(0.25, 3.0 + v.margin + 1e-6).prune is True


def test_a_hopeless_curve_is_pruned_at_its_first_point_and_a_good_one_never():
    reference = Reference((decaying(6.0), decaying(6.0, offset=0.01), decaying(5.5)))
    flat = decaying(0.3)  # a learning rate far too small: hardly learns
    watch = Watch(reference)
    for p, y in flat.points:
        watch.see({"progress": p, "dev_loss": y, "loss": y})
    assert watch.verdict is not None and watch.verdict.progress == 0.26
    assert watch.verdict.prune and "pruned at 26% of its budget" in watch.verdict.reason()
    for good in (decaying(6.0), decaying(8.0), decaying(5.8, offset=0.02)):
        watch = Watch(reference)
        for p, y in good.points:
            watch.see({"progress": p, "dev_loss": y})
        assert watch.verdict is None, good


def test_late_points_and_non_finite_losses():
    reference = Reference((curve((0.25, 3.0), (1.0, 2.0)),))
    assert reference.judge(PRUNE_BEFORE, 9.0) is None  # the end: the sealed score decides
    assert reference.judge(0.5, float("nan")).prune  # a NaN dev loss is never better
    assert reference.judge(0.5, float("inf")).prune
    watch = Watch(reference)
    watch.see({"progress": 0.3, "loss": 9.0})  # no dev loss on this step: nothing to judge
    assert watch.verdict is None


def test_pruned_is_a_result_status_of_its_own():
    assert "pruned" in RESULT_STATUSES and "pruned" not in SCORED_STATUSES


def test_the_search_tells_optuna_a_pruned_run_as_pruned():
    researcher = SearchResearcher(seed=0)
    constants = parse_constants(RECIPE)
    space = search_space(constants, researcher.frozen)
    best = {name: constants[name].value for name in space}
    bad = {**best, "LR": 0.01}  # 4 times smaller: on the searched grid
    point = {"progress": 0.26, "dev_loss": 3.2, "reference": 2.5, "margin": 0.05, "runs": 2}
    history = [Outcome(1, "LR up", "discard", 1.2, {**best, "LR": 0.08}, "", best),
               Outcome(2, "LR down", "pruned", None, bad, "pruned at 26%", best,
                       pruned=point)]  # fmt: skip
    study = researcher._study(context(RECIPE, history, 1.0), constants, space, best, seed=0)
    told = sorted((t.state.name, t.value, t.intermediate_values) for t in study.trials
                  if "LR" in t.params)  # fmt: skip
    # the discard, the best (told as it is outside the history's params), the pruned run
    assert told == [("COMPLETE", 1.0, {}), ("COMPLETE", 1.2, {}), ("PRUNED", None, {26: 3.2})]
    # And it is never proposed again, as any configuration already run.
    for _ in range(5):
        proposal = researcher.propose(context(RECIPE, history, 1.0))
        assert proposal.params != bad


def test_search_prunes_by_default_and_the_other_researchers_do_not():
    """`search --prune` beat `search` at equal wall clock (bench/researchers.py, 4 seeds of 4),
    so search sessions prune unless told --no-prune; llm and command were not measured."""
    parser = build_parser()

    def prunes_with(*flags) -> bool:
        return prunes(parser.parse_args(["research", *flags]))

    assert prunes_with() and prunes_with("--agent", "search")
    assert not prunes_with("--agent", "llm") and not prunes_with("--agent", "command")
    assert not prunes_with("--no-prune") and prunes_with("--agent", "command", "--prune")


# --- a real session ---------------------------------------------------------------------------

BUDGET = "2s"
AGENT = (  # cuts the learning rate 10,000-fold: the candidate hardly learns
    f'test -s {{prompt_file}} && {sys.executable} -c "import pathlib; p = pathlib.Path('
    "'train.py'); p.write_text(p.read_text().replace('RATE = 0.005', 'RATE = 0.0000005'))\""
    " && echo 'learning rate 10000 times too small' > .autolab/description.txt"
)


def test_a_session_prunes_a_hopeless_candidate_and_every_view_says_so(tmp_path):
    home, workspace = tmp_path / "home", tmp_path / "ws"
    done = autolab("init", str(workspace), "--recipe", "mlp", "--budget", BUDGET, home=home)
    assert done.returncode == 0, done.stderr
    done = autolab(
        "research", "-C", str(workspace), "--plain", "--tag", "p", "--agent", "command",
        "--agent-command", AGENT, "--max-experiments", "1", "--confirm", "0", "--prune",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with Ledger.for_workspace(workspace) as ledger:
        assert ledger.verify() == []
        views = ledger.experiments()
        (candidate,) = [v for v in views if v.kind == "candidate"]
        metrics = ledger.metrics(candidate.number)
        st = ledger.standings("p")
        session = ledger.sessions()[-1]
    assert session.config["prune"] is True and session.status == "succeeded"
    assert candidate.status == "pruned", (candidate.status, candidate.reason)
    assert candidate.score is None and candidate.val_bpb is None
    point = candidate.flags["pruned"]
    assert point["dev_loss"] > point["reference"] + point["margin"]
    # Judged at one of its own dev-loss points (a quarter of the budget, or later on a machine
    # so busy that the runs had no step in the first quarters).
    assert point["progress"] in {r["progress"] for r in metrics if r.get("dev_loss") is not None}
    assert candidate.reason.startswith("pruned at ") and f"{point['dev_loss']:.4f}" in (
        candidate.reason
    )
    # The session's own line says it once: "exp N pruned at 25% ...", not "pruned: pruned at".
    assert f"exp {candidate.number} pruned at " in done.stdout, done.stdout
    assert "pruned: pruned" not in done.stdout
    # It stopped there: no step of it trained past the point it was judged at (plus the
    # steps in flight while the loop read the record and killed it).
    assert max(r["progress"] for r in metrics) < point["progress"] + 0.25
    # Not a failure, not a keep: the branch stays on the baseline.
    assert (st.counts.pruned, st.counts.failed, st.counts.kept) == (1, 0, 0)
    assert st.best_number is None
    assert st.counts.by_status() == {"pruned": 1}

    status = json.loads(autolab("status", "-C", str(workspace), "--json", home=home).stdout)
    assert status["counts"]["pruned"] == 1
    plain = autolab("status", "-C", str(workspace), home=home).stdout
    assert "1 pruned" in plain
    rows = json.loads(autolab("results", "-C", str(workspace), "--json", home=home).stdout)
    assert [r["status"] for r in rows if r["number"] == candidate.number] == ["pruned"]
    tsv = (workspace / "results.tsv").read_text().splitlines()
    assert tsv[-1].split("\t")[3] == "pruned"
    events = autolab("events", "-C", str(workspace), home=home).stdout
    assert f"exp {candidate.number} pruned" in events


class FixThenCripple:
    """Fixes the handicap (a win far beyond the noise, kept), then cuts the learning rate
    10,000-fold: the second is judged against the kept run's curve, not the baseline's."""

    name = "fix-then-cripple"

    def __init__(self):
        self.asked = 0

    def propose(self, context):
        self.asked += 1
        source = context.best_source
        if self.asked == 1:
            fixed = source.replace("HANDICAP_A = 1", "HANDICAP_A = 0")
            return Proposal(fixed.replace("HANDICAP_B = 1", "HANDICAP_B = 0"), "fix both")
        if self.asked == 2:
            return Proposal(source.replace("RATE = 0.005", "RATE = 0.0000005"), "cripple")
        return None


def test_a_candidate_is_pruned_against_the_best_once_one_was_kept(tmp_path, monkeypatch):
    from test_workers_parallel import HANDICAPS, SPOIL

    from autolab import gitrepo
    from autolab.research.loop import ResearchSession, SessionOptions
    from autolab.research.policy import Policy
    from autolab.workspace import load_workspace

    root, home = mlp_workspace(tmp_path, BUDGET)
    monkeypatch.setenv("AUTOLAB_HOME", str(home))
    ws = load_workspace(root)
    source = ws.train_py.read_text()
    end = source.index("\n# ----")  # the end of the constants block
    source = source[:end] + HANDICAPS.rstrip() + source[end:]
    ws.train_py.write_text(source.replace("    run.finish(model, context_len=CONTEXT_LEN)", SPOIL))
    gitrepo.commit_all(root, "two handicaps")
    options = SessionOptions(tag="b", budget_seconds=2.0, baseline_runs=2, policy=Policy(),
                             prune=True)  # fmt: skip
    with Ledger.for_workspace(root) as ledger:
        session = ResearchSession(ws, FixThenCripple(), options, ledger)
        session.start()
        assert session.run() == "succeeded"
        views = {v.number: v for v in ledger.experiments()}
        fixed, crippled = [v for v in views.values() if v.kind == "candidate"]
        best_curve = Curve.from_metrics(ledger.metrics(fixed.number))
        baselines = [Curve.from_metrics(ledger.metrics(v.number))
                     for v in views.values() if v.kind == "baseline"]  # fmt: skip
    assert fixed.status == "keep", (fixed.status, fixed.reason)
    assert crippled.status == "pruned", (crippled.status, crippled.reason)
    point = crippled.flags["pruned"]
    # One curve, the kept run's (no re-check: its win was beyond the band), at that progress;
    # the two baseline runs' mean would differ.
    assert point["runs"] == 1
    assert point["reference"] == pytest.approx(best_curve.at(point["progress"]), abs=1e-9)
    base = sum(c.at(point["progress"]) for c in baselines) / len(baselines)
    assert point["reference"] != pytest.approx(base, abs=1e-9)
    assert "worse than the best's" in crippled.reason
