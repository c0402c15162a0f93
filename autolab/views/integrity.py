"""Whether the ledger, the research branch and results.tsv still tell one story, as one-line
warnings for `autolab status` and `autolab results`.

- A row that does not match the ledger's hash chain (edited, deleted or inserted outside
  autolab) is a broken ledger: the command still prints what it has, warns on stderr and exits
  with TAMPERED_EXIT, so that a script reading `--json` cannot take an edited score for one the
  referee wrote.
- A research branch whose head is not the last kept commit, or a results.tsv that differs from
  the ledger, is a disagreement: a warning, the exit code unchanged. A kill -9 between two
  writes leaves the same signs, and `autolab research --resume` repairs both from the ledger.
  Neither is checked while the session is still running: its next write settles them.
"""

from pathlib import Path

from autolab import gitrepo
from autolab.track.ledger import Ledger
from autolab.track.results_tsv import format_results_tsv
from autolab.track.standings import LIVE_STATES, session_state

TAMPERED_EXIT = 3
RESULTS_FILE = "results.tsv"


def chain_warnings(ledger: Ledger) -> list[str]:
    problems = ledger.verify()
    if not problems:
        return []
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return [
        f"the ledger was changed outside autolab: {problems[0]}{more}; its numbers cannot be "
        "trusted"
    ]


def disagreements(ledger: Ledger, root: Path) -> list[str]:
    """One line per view of the story that disagrees with the ledger."""
    session = ledger.latest_session()
    if session is None or session_state(ledger, session)[0] in LIVE_STATES:
        return []
    lines = []
    tsv = root / RESULTS_FILE
    if tsv.is_file() and tsv.read_text(encoding="utf-8") != format_results_tsv(
        ledger.experiments()
    ):
        lines.append(
            f"{RESULTS_FILE} differs from the ledger: the ledger is the record; "
            "`autolab results --tsv > results.tsv` rewrites it"
        )
    kept = [
        v
        for v in ledger.experiments(session_ids=ledger.standings(session.tag).session_ids)
        if v.kind == "candidate" and v.status == "keep"
    ]
    expected = kept[-1].commit_sha if kept else session.config.get("base_commit", "")
    head = gitrepo.git(root, "rev-parse", "-q", "--verify", session.branch, check=False)
    if expected and head and head != expected:
        what = f"exp {kept[-1].number}'s commit" if kept else "the session's base commit"
        lines.append(
            f"branch {session.branch} is at {head[:7]}, the ledger expects {expected[:7]} "
            f"({what}): `autolab research --resume` moves it back and keeps the stray work"
        )
    return lines
