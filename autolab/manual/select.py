"""Which experiment `autolab diff` and `autolab checkout` mean: a number, `best`, `baseline` or
`last`, each defined once here.

- `best`: the lowest-scoring best of every history in the ledger (each research branch's best
  kept candidate, and the person's best manual run): the train.py to continue from.
- `baseline`: the latest research session's baseline run (the train.py it started from, as
  `autolab inspect --experiment baseline`); with no research session, the person's first run.
- `last`: the person's latest `autolab train`; with none, the latest experiment.
"""

from pathlib import Path

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.track.ledger import ExperimentView, Ledger
from autolab.track.standings import MANUAL, every_branch, manual_views

SELECTORS = "an experiment number, best, baseline or last"


def pick(ledger: Ledger, selector: str) -> ExperimentView:
    """The experiment `selector` names, with a commit; a UsageError saying what to do."""
    selector = selector.strip()
    if selector.isdigit():
        view = ledger.experiment(int(selector))
        if view is None:
            last = ledger.next_number() - 1
            known = f"experiments are 1 to {last}" if last else "the ledger has none yet"
            raise UsageError(f"no experiment {selector} in the ledger ({known})")
    elif selector == "best":
        view = _best(ledger)
    elif selector == "baseline":
        view = _baseline(ledger)
    elif selector == "last":
        manual = [v for v in manual_views(ledger) if v.kind == MANUAL]
        every = ledger.experiments()
        view = manual[-1] if manual else (every[-1] if every else None)
        if view is None:
            raise UsageError("no experiment in the ledger yet: run `autolab train` first")
    else:
        raise UsageError(f"unknown experiment {selector!r}: use {SELECTORS}")
    if not view.commit_sha:
        raise UsageError(f"experiment {view.number} has no commit: pick another")
    return view


def _best(ledger: Ledger) -> ExperimentView:
    bests = [
        (st.best_score, st.best_number)
        for st in every_branch(ledger).values()
        if st.best_number is not None
    ]
    if not bests:
        raise UsageError(
            "nothing scored is kept in the ledger yet: run `autolab train` (or a research "
            "session) first, or name an experiment number"
        )
    return ledger.experiment(min(bests)[1])


def _baseline(ledger: Ledger) -> ExperimentView:
    sessions = [s for s in ledger.sessions() if s.researcher != MANUAL]
    if sessions:
        ids = ledger.standings(sessions[-1].tag).session_ids
        runs = [v for v in ledger.experiments(session_ids=ids) if v.kind == "baseline"]
        kept = [v for v in runs if v.status == "keep"]
        if kept or runs:
            return (kept or runs)[-1]
    manual = [v for v in manual_views(ledger) if v.kind == MANUAL]
    if not manual:
        raise UsageError("no baseline in the ledger yet: run `autolab train` first")
    return manual[0]


def detach_at(repo: Path, ledger: Ledger, selector: str, branch: str) -> ExperimentView:
    """For `autolab research --from`: check out the commit of experiment `selector` (detached),
    so the new session's branch starts there. Refuses before moving anything."""
    view = pick(ledger, selector)
    dirty = gitrepo.dirty_paths(repo)
    if dirty:
        raise UsageError(
            f"the workspace has uncommitted changes ({', '.join(dirty[:3])}): commit or stash "
            "them (git stash -u) before `autolab research --from`"
        )
    if gitrepo.git(repo, "branch", "--list", branch):
        raise UsageError(f"branch {branch} exists: pick a new --tag")
    gitrepo.git(repo, "checkout", "-q", "--detach", view.commit_sha)
    return view
