"""What a researcher is shown before it proposes: the branch's history as the standings tell
it (score, Δ, steps, throughput, memory), the noise band, the best train.py and the tail of
the last failed run's log, and what is running now (several workers: the other proposals in
flight, which a new proposal should not repeat)."""

from functools import lru_cache
from pathlib import Path

from autolab import gitrepo
from autolab.research.constants import parse_constants, values
from autolab.research.proposal import Outcome, ResearchContext
from autolab.track.ledger import FAILED_STATUSES, ExperimentView
from autolab.track.standings import Standings
from autolab.workspace import PROGRAM_FILE, TRAIN_FILE, Workspace

LOG_TAIL_LINES = 30


def research_context(
    workspace: Workspace,
    standings: Standings,
    experiments: list[ExperimentView],
    budget_seconds: float,
    device: str,
) -> ResearchContext:
    rows = {r.number: r for r in standings.rows}
    history = [
        Outcome(
            e.number, e.description, e.status, e.val_bpb, e.params or None, e.reason,
            parent_params=params_at(workspace.root, e.parent_commit),
            kind=e.kind, score=rows[e.number].score, delta=rows[e.number].delta,
            num_steps=e.num_steps, tokens_per_sec=e.tokens_per_sec,
            peak_memory_mb=e.peak_memory_mb, pruned=e.flags.get("pruned"),
        )
        for e in experiments
        if e.status != "running" and e.number in rows
    ]  # fmt: skip
    in_flight = [
        Outcome(e.number, e.description, "running", None, e.params or None, kind=e.kind,
                parent_params=params_at(workspace.root, e.parent_commit))
        for e in experiments
        if e.status == "running" and e.kind == "candidate"
    ]  # fmt: skip
    failures = [e for e in experiments if e.status in FAILED_STATUSES]
    ref = standings.reference
    return ResearchContext(
        workspace=workspace.root,
        best_source=workspace.train_py.read_text(),
        program=(workspace.root / PROGRAM_FILE).read_text(),
        history=history,
        best_val_bpb=standings.best_score,
        baseline_val_bpb=ref.bpb if ref else None,
        last_failure_log=log_tail(workspace.runs_dir / str(failures[-1].number) / "run.log")
        if failures
        else None,
        budget_seconds=budget_seconds,
        noise_spread=ref.spread if ref else None,
        keep_band=ref.band if ref else None,
        device=device,
        in_flight=in_flight,
    )


def params_at(repo: Path, commit: str) -> dict | None:
    """The constants of train.py at `commit` (an experiment's parent); a copy, the researcher
    may change it."""
    params = _params_at(repo, commit) if commit else None
    return dict(params) if params is not None else None


@lru_cache(maxsize=1024)
def _params_at(repo: Path, commit: str) -> dict | None:
    """Parsed once per commit: a commit never changes."""
    try:
        return values(parse_constants(gitrepo.show_file(repo, commit, TRAIN_FILE)))
    except (gitrepo.GitError, SyntaxError, ValueError):
        return None


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str | None:
    if not log.is_file():
        return None
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
