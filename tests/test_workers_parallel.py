"""`autolab research --workers N` (issue 12 §1): experiments at once on one machine.

Real sessions on the mlp recipe with 1-2 s budgets: two experiments run at the same time, each
with its share of the cores (one thread each on a 2-core box), one ledger row each; a win whose
parent is no longer the best is re-based and run again; a kill -9 with two experiments in
flight loses nothing recorded and --resume carries on; bad input is a one-line error.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tests_support import autolab, mlp_workspace

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.research.parallel import ParallelSession
from autolab.research.policy import Policy
from autolab.research.proposal import Outcome, Proposal
from autolab.research.rebase import rebase
from autolab.research.search import SearchResearcher
from autolab.research.slots import Slot, plan_slots, usable_cores
from autolab.stop_request import AFTER, request_stop
from autolab.track.ledger import Ledger
from autolab.workspace import load_workspace

BUDGET = "1s"


@pytest.fixture
def workspace(tmp_path):
    root, home = mlp_workspace(tmp_path, BUDGET)
    return home, root


def intervals(ledger: Ledger) -> dict[int, tuple[float, float]]:
    """Each experiment's (started, finished) as its events recorded them."""
    started, finished = {}, {}
    for event in ledger.events():
        if event.kind == "started":
            started[event.number] = event.time
        elif event.kind == "finished":
            finished[event.number] = event.time
    return {n: (started[n], finished[n]) for n in started if n in finished}


def worktrees(root) -> list[str]:
    return [line for line in gitrepo.git(root, "worktree", "list").splitlines() if line]


# --- pieces -----------------------------------------------------------------------------------


def test_slots_divide_the_cores_or_pin_one_gpu_each():
    assert plan_slots(2, None, "cpu", cores=2) == [Slot(0, 1), Slot(1, 1)]
    assert plan_slots(None, None, "cpu", cores=8) == [Slot(0, 0)]  # alone: torch's own count
    assert [s.threads for s in plan_slots(3, None, "cpu", cores=8)] == [2, 2, 2]
    assert [s.threads for s in plan_slots(2, None, "cpu", threads=3, cores=8)] == [3, 3]
    gpus = plan_slots(None, [0, 2, 3], "cuda", cores=16, gpu_count=4)
    assert [(s.gpu, s.threads) for s in gpus] == [(0, 5), (2, 5), (3, 5)]
    assert [s.gpu for s in plan_slots(2, None, "cuda", cores=16, gpu_count=2)] == [0, 1]
    for bad in [
        dict(workers=0, gpus=None, device="cpu"),
        dict(workers=3, gpus=None, device="cpu"),  # 3 runs on 2 cores
        dict(workers=2, gpus=None, device="cpu", threads=2),  # 2 x 2 threads on 2 cores
        dict(workers=None, gpus=[0], device="cpu"),  # --gpus without CUDA
        dict(workers=2, gpus=[0, 1, 2], device="cuda", gpu_count=4),
        dict(workers=None, gpus=[0, 5], device="cuda", gpu_count=4),
    ]:
        with pytest.raises(UsageError):
            plan_slots(cores=2, **bad)


PARENT = "A = 1  # a\nB = 2  # b\nC = 0.5  # c\n\nprint(A, B, C)\n"


def test_a_change_of_constants_rebases_onto_a_newer_best_unless_it_clashes():
    change = PARENT.replace("A = 1", "A = 4")
    best = PARENT.replace("B = 2", "B = 8")
    rebased, why = rebase(PARENT, change, best)
    assert why == "" and "A = 4" in rebased and "B = 8" in rebased
    rebased, why = rebase(PARENT, change, PARENT.replace("A = 1", "A = 2"))
    assert rebased is None and "changed A as well" in why
    code = change.replace("print(A, B, C)", "print(A)")
    assert rebase(PARENT, code, best)[0] is None
    assert rebase(PARENT, change, change) == (None, "the new best already has it")


RECIPE = (
    "LEARNING_RATE = 0.005  # peak learning rate\nN_HIDDEN = 128  # hidden units\n"
    "WARMUP_RATIO = 0.02  # warm-up share\nBATCH_SIZE = 32  # windows per step\n"
)


def test_the_search_asked_while_others_run_proposes_something_else():
    from test_search import context

    researcher = SearchResearcher(seed=0)
    ctx = context(RECIPE, [], 3.0)
    first = researcher.propose(ctx)
    ctx.in_flight = [Outcome(9, first.description, "running", None, first.params)]
    second = researcher.propose(ctx)
    assert second.params != first.params


# --- real sessions ----------------------------------------------------------------------------


def test_two_workers_train_at_once_with_their_share_of_the_cores(workspace):
    home, root = workspace
    done = autolab("research", "--no-prune",
                   "-C", str(root), "--plain", "--tag", "w", "--workers", "2",
                   "--max-experiments", "3", "--baseline-runs", "2", "--confirm", "0",
                   home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with Ledger.for_workspace(root) as ledger:
        assert ledger.verify() == []
        views = ledger.experiments()
        spans = intervals(ledger)
        standings = ledger.standings("w")
    # One row per experiment, every one with its result; the candidates counted to the limit.
    assert len({v.number for v in views}) == len(views) and len(views) >= 5
    assert all(v.status != "running" for v in views)
    assert sum(v.kind == "candidate" for v in views) >= 3
    # At once: some experiment started before another one ended (the baselines, at least).
    ordered = sorted(spans.values())
    assert any(later[0] < earlier[1] for earlier, later in zip(ordered, ordered[1:], strict=False))
    # Each run got its share of the cores, applied by the harness inside the training process
    # (its summary says so), and the fingerprint says two experiments shared the machine.
    share = max(1, usable_cores() // 2)
    scored = [v for v in views if v.val_bpb is not None]
    assert scored and all(v.hardware == f"cpu ({share} threads)" for v in scored)
    assert all(v.flags["hardware"]["threads"] == share for v in scored)
    assert all(v.flags["hardware"]["workers"] == 2 for v in scored)
    # The worktrees are gone, the user's tree is clean and holds the branch's best.
    assert worktrees(root) == worktrees(root)[:1] and not (root / ".autolab" / "workers").exists()
    assert gitrepo.dirty_paths(root) == []
    assert gitrepo.current_branch(root) == "autolab/w"
    if standings.best_number is not None:
        best = next(v for v in views if v.number == standings.best_number)
        assert gitrepo.head(root) == best.commit_sha


# A train.py with two handicaps, each costing the exported model a lot of bits per byte: a
# fix of either one is a win far beyond the noise, whichever order the two finish in. The
# pushed tokens are the vocabulary's last two (rare letters, for names): a push on a frequent
# token, such as the newline, may cost nothing.
HANDICAPS = """
HANDICAP_A = 1  # 1 pushes the logit of the last token up by 6 after training
HANDICAP_B = 1  # 1 pushes the logit of the one before it up by 6 after training
"""
SPOIL = """    with torch.no_grad():
        model.out.bias[-1] += 6.0 * HANDICAP_A
        model.out.bias[-2] += 6.0 * HANDICAP_B
    run.finish(model, context_len=CONTEXT_LEN)"""


class FixEach:
    """Proposes the fix of each handicap against the best of its time, then nothing."""

    name = "fixes"

    def __init__(self):
        self.left = ["HANDICAP_A", "HANDICAP_B"]

    def propose(self, context):
        if not self.left:
            return None
        name = self.left.pop(0)
        return Proposal(context.best_source.replace(f"{name} = 1", f"{name} = 0"), f"fix {name}")


class FixEachThenStop(FixEach):
    """FixEach, then asks the session to stop (as `autolab stop` does) when asked again:
    the stale win's re-based run is then left unrun."""

    def __init__(self, state_dir):
        super().__init__()
        self.state_dir = state_dir

    def propose(self, context):
        if not self.left:
            request_stop(self.state_dir, AFTER, "the test")
        return super().propose(context)


def handicapped_session(root, tag="r"):
    """A two-worker session on a train.py with HANDICAPS, ready to start."""
    from autolab.research.loop import SessionOptions

    ws = load_workspace(root)
    source = ws.train_py.read_text()
    if "HANDICAP_A" not in source:
        assert "self.out = nn.Linear" in source
        assert "    run.finish(model, context_len=CONTEXT_LEN)" in source
        end = source.index("\n# ----")  # the end of the constants block
        source = source[:end] + HANDICAPS.rstrip() + source[end:]
        source = source.replace("    run.finish(model, context_len=CONTEXT_LEN)", SPOIL)
        ws.train_py.write_text(source)
        gitrepo.commit_all(root, "two handicaps")
    options = SessionOptions(
        tag=tag,
        budget_seconds=1.0,
        baseline_runs=2,
        policy=Policy(),
        slots=plan_slots(2, None, "cpu", cores=2),
    )
    return ws, options


def test_a_win_whose_parent_is_no_longer_the_best_is_rebased_and_run_again(workspace, monkeypatch):
    home, root = workspace
    monkeypatch.setenv("AUTOLAB_HOME", str(home))
    ws, options = handicapped_session(root)
    with Ledger.for_workspace(root) as ledger:
        session = ParallelSession(ws, FixEach(), options, ledger)
        session.start()
        assert session.run() == "succeeded"
        views = {v.number: v for v in ledger.experiments()}
        standings = ledger.standings("r")
    candidates = [v for v in views.values() if v.kind == "candidate"]
    assert len(candidates) == 3, [(v.number, v.status, v.reason, v.description) for v in candidates]
    first, second, rebased = sorted(candidates, key=lambda v: v.finished)
    assert first.status == "keep" and first.parent_commit == second.parent_commit
    # The second won against its parent too, but the best had moved: recorded, not kept...
    assert second.status == "discard" and "but the best moved to exp" in second.reason
    assert second.flags["stale_win"]["rebased"] is True
    assert gitrepo.git(root, "rev-parse", f"refs/autolab/tried/{second.number}") == (
        second.commit_sha
    )  # fmt: skip
    # ...and its change, re-based on the new best, ran as an experiment of its own and won.
    assert rebased.parent_commit == first.commit_sha and "re-based on exp" in rebased.description
    assert rebased.status == "keep" and standings.best_number == rebased.number
    best_source = gitrepo.show_file(root, gitrepo.head(root), "train.py")
    assert "HANDICAP_A = 0" in best_source and "HANDICAP_B = 0" in best_source


def test_a_rebased_run_a_stop_left_unrun_is_run_by_resume(workspace, monkeypatch):
    home, root = workspace
    monkeypatch.setenv("AUTOLAB_HOME", str(home))
    ws, options = handicapped_session(root, tag="s")
    with Ledger.for_workspace(root) as ledger:
        session = ParallelSession(ws, FixEachThenStop(ws.state_dir), options, ledger)
        session.start()
        assert session.run() == "cancelled"
        views = [v for v in ledger.experiments() if v.kind == "candidate"]
        notes = [e.message for e in ledger.events() if e.kind == "note"]
    stale = [v for v in views if v.flags.get("stale_win")]
    assert len(views) == 2 and len(stale) == 1, [(v.status, v.reason) for v in views]
    assert "re-based on it to run again" in stale[0].reason
    assert any(n.startswith("not run, the session stopped first") for n in notes), notes
    # --resume runs the re-based change first, on the best of its time.
    done = autolab("research", "--no-prune", "-C", str(root), "--plain", "--tag", "s", "--resume",
                   "--workers", "2", "--max-experiments", "3", "--confirm", "0",
                   home=home)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with Ledger.for_workspace(root) as ledger:
        later = [v for v in ledger.experiments() if v.number > max(v.number for v in views)
                 and v.kind == "candidate"]  # fmt: skip
    assert later and f"(exp {stale[0].number} re-based on exp" in later[0].description
    rebased = gitrepo.show_file(root, later[0].commit_sha, "train.py")
    assert "HANDICAP_A = 0" in rebased and "HANDICAP_B = 0" in rebased
    assert later[0].status == "keep"


def test_kill_9_with_two_in_flight_loses_nothing_then_resume_and_stop(workspace):
    home, root = workspace
    args = ["research", "--no-prune", "-C", str(root), "--plain", "--tag", "k", "--workers", "2",
            "--baseline-runs", "2", "--confirm", "0", "--budget", "3s"]  # fmt: skip
    loop = subprocess.Popen([sys.executable, "-m", "autolab", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "AUTOLAB_HOME": str(home)})  # fmt: skip
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            time.sleep(0.5)
            with Ledger.for_workspace(root) as ledger:
                running = [v for v in ledger.experiments()
                           if v.kind == "candidate" and v.status == "running"]  # fmt: skip
            if len(running) == 2:
                break
        assert len(running) == 2, "two candidates never ran at once"
    finally:
        loop.send_signal(signal.SIGKILL)
        loop.wait()
    with Ledger.for_workspace(root) as ledger:
        assert ledger.verify() == []
        before = {v.number: v for v in ledger.experiments()}
    recorded = {n: v.status for n, v in before.items() if v.status != "running"}
    assert len(recorded) >= 2  # the baseline runs, complete
    # The resumed session runs the two again first; `autolab stop` then lets the experiments
    # in flight finish and be recorded, and ends it.
    resumed = subprocess.Popen([sys.executable, "-m", "autolab", *args, "--resume"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "AUTOLAB_HOME": str(home)})  # fmt: skip
    try:
        deadline = time.time() + 300
        while time.time() < deadline and resumed.poll() is None:
            time.sleep(0.5)
            with Ledger.for_workspace(root) as ledger:
                if any(v.number > max(before) and v.status == "running"
                       for v in ledger.experiments()):  # fmt: skip
                    break
        stop = autolab("stop", "-C", str(root), home=home)
        assert stop.returncode == 0, stop.stderr
        output, _ = resumed.communicate(timeout=300)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, output
    with Ledger.for_workspace(root) as ledger:
        assert ledger.verify() == []
        after = {v.number: v for v in ledger.experiments()}
        assert ledger.sessions()[-1].status == "cancelled"
    # Nothing recorded before the kill changed; the two in flight are interrupted, then run
    # again by the resumed session and recorded before it stopped; nothing is left running.
    assert {n: after[n].status for n in recorded} == recorded
    killed = [after[v.number] for v in running]
    assert all(v.status == "interrupted" for v in killed)
    again = [v for v in after.values() if v.number > max(before)]
    for v in killed:
        assert any(a.description == v.description and a.status != "interrupted" for a in again)
    assert all(v.status != "running" for v in after.values())
    assert not (root / ".autolab" / "workers").exists() and len(worktrees(root)) == 1


@pytest.mark.skipif(usable_cores() < 2, reason="two workers need two cores")
def test_a_branch_continued_on_other_hardware_measures_its_own_reference_first(workspace):
    """Issue 12 §5: one worker with every core, then --resume with two workers of one thread:
    another fingerprint, so the resumed session measures its own reference on the branch's
    best before any candidate, and its candidates are compared, never discarded as measured
    elsewhere."""
    home, root = workspace
    base = ["research", "--no-prune", "-C", str(root), "--plain", "--tag", "fp", "--confirm", "0"]
    first = autolab(*base, "--max-experiments", "1", home=home)
    assert first.returncode == 0, first.stdout + first.stderr
    with Ledger.for_workspace(root) as ledger:
        before = ledger.standings("fp")
    head = gitrepo.head(root)
    done = autolab(*base, "--resume", "--workers", "2", "--max-experiments", "3", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    with Ledger.for_workspace(root) as ledger:
        assert ledger.verify() == []
        one, two = ledger.sessions()
        runs = ledger.experiments(two.id)
        standings = ledger.standings("fp")
        notes = [e.message for e in ledger.events(session_id=two.id) if e.kind == "note"]
    alone = before.reference.hardware
    shared = {**alone, "threads": max(1, usable_cores() // 2), "workers": 2}
    baselines = [v for v in runs if v.kind == "baseline"]
    candidates = [v for v in runs if v.kind == "candidate"]
    # Its own reference: three runs (nothing to pool with on this fingerprint) of the branch's
    # best, on the new fingerprint, before any candidate started.
    assert len(baselines) == 3 and {v.commit_sha for v in baselines} == {head}
    assert all(v.flags["hardware"] == shared for v in baselines)
    assert max(v.number for v in baselines) < min(v.number for v in candidates)
    assert any("measures this one's own reference" in n for n in notes), notes
    assert standings.reference.hardware == shared and before.reference.hardware == alone
    mean = sum(v.val_bpb for v in baselines) / 3
    assert standings.reference.bpb == pytest.approx(mean)
    # Every candidate was judged on its own fingerprint, none left out as measured elsewhere.
    assert candidates and not any("other hardware" in v.reason for v in candidates)
    # Each run's Δ is against its own fingerprint's reference; the best is one of this one's.
    for v in (*ledger_rows(root, one.id), *candidates):
        row = standings.row(v.number)
        if row.score is not None:
            ours = v.flags["hardware"] == shared
            want = standings.reference.bpb if ours else before.reference.bpb
            assert row.delta == pytest.approx(row.score - want)
    if standings.best_number is not None:
        assert standings.best_number in {v.number for v in candidates}
    assert standings.best_score <= standings.reference.bpb
    # status names the fingerprint the reference was measured on, and lists both.
    shown = " ".join(autolab("status", "-C", str(root), home=home).stdout.split())
    assert "mean of the baseline runs on cpu" in shown and shown.count("hardware ") == 2, shown
    status = json.loads(autolab("status", "-C", str(root), "--json", home=home).stdout)
    assert status["reference_hardware"] == shared
    # The dashboard's experiment page and the report name each run's fingerprint the same way.
    from autolab.dashboard.api import Dashboard
    from autolab.hardware import label
    from autolab.report.build import collect, facts

    dashboard = Dashboard(load_workspace(root))
    try:
        assert dashboard.experiment(baselines[0].number)["fingerprint"] == label(shared)
        assert dashboard.overview()["reference"]["fingerprint"] == label(shared)
    finally:
        dashboard.close()
    with Ledger.for_workspace(root) as ledger:
        reported = dict(facts(collect(root, ledger, num_samples=0)))["hardware"]
    assert reported == f"{label(alone)}; {label(shared)}"


def ledger_rows(root, session_id):
    with Ledger.for_workspace(root) as ledger:
        return ledger.experiments(session_id)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--gpus", "0"], "--gpus needs a CUDA device"),
        (["--threads", "1", "--ray", "auto"], "with --ray the cluster places each experiment"),
        (["--workers", str(usable_cores() + 1)], "would oversubscribe"),
        (["--workers", "1", "--threads", str(usable_cores() + 1)], "more than the"),
    ],
)
def test_bad_worker_options_are_one_line_errors(workspace, args, message):
    home, root = workspace
    done = autolab(
        "research", "--no-prune", "-C", str(root), "--plain", "--device", "cpu", *args, home=home
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    with Ledger.for_workspace(root) as ledger:
        assert ledger.sessions() == []
