"""Writing a person's `autolab train` into the ledger, as the loop writes its experiments.

Order, as the loop's: the train.py is committed (plumbing, `preserve`) and its experiment row
written (created) before the run; metrics stream in while it trains; the result row comes
last. Manual runs belong to no session (their history is `standings.MANUAL_HISTORY`), so a
research branch's numbers never count them. A run whose process was killed before its result
is marked interrupted by the next `autolab train`.
"""

import os
from dataclasses import replace
from pathlib import Path

from autolab.errors import UsageError
from autolab.manual import preserve
from autolab.processes import process_alive
from autolab.research.constants import describe_changes, parse_constants, values
from autolab.research.recorder import result_record
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.track.standings import (
    LIVE_STATES,
    MANUAL,
    manual_standings,
    manual_views,
    session_state,
)
from autolab.workspace import Workspace

FLUSH_EVERY = 4  # metric rows per ledger write, as the loop


class ManualRecorder:
    def __init__(self, workspace: Workspace, ledger: Ledger):
        self.workspace = workspace
        self.repo = workspace.root
        self.ledger = ledger
        preserve.require_repo(self.repo)

    def check_no_research_running(self) -> None:
        """A live research session owns train.py (its branch resets it) and the ledger's
        numbering: a manual run beside it would record the wrong file."""
        session = self.ledger.latest_session()
        if session is not None and session_state(self.ledger, session)[0] in LIVE_STATES:
            raise UsageError(
                f"research session {session.id} ({session.tag}) is running in this workspace "
                "and owns train.py: `autolab stop` it first, or train with --no-record"
            )

    def close_abandoned(self) -> None:
        """Manual runs left without a result by a process that is gone: interrupted."""
        for view in manual_views(self.ledger):
            if view.status != "running":
                continue
            started = [e for e in self.ledger.events(number=view.number) if e.kind == "started"]
            pid = started[-1].data.get("pid") if started else None
            if pid is None or not process_alive(int(pid)):
                self.ledger.add_result(
                    view.number,
                    ResultRecord(
                        "interrupted", "the `autolab train` process ended before recording"
                    ),
                )

    def describe(self, source: str) -> str:
        """What changed since the previous manual run (else HEAD's train.py), in words."""
        previous = [v for v in manual_views(self.ledger) if v.kind == MANUAL and v.commit_sha]
        if previous:
            old, label = preserve.train_py_at(self.repo, previous[-1].commit_sha), previous[-1]
            what = f"exp {label.number}"
        else:
            head = preserve.head_or_none(self.repo)
            old = preserve.train_py_at(self.repo, head) if head else ""
            what = "the last commit"
        if old == source:
            return f"same train.py as {what}"
        try:
            change = describe_changes(values(parse_constants(old)), values(parse_constants(source)))
        except (SyntaxError, ValueError):
            change = "no change"
        if change == "no change":
            return f"edited train.py beyond its constants (vs {what})"
        return change

    def begin(
        self,
        source: str,
        description: str,
        seed: int,
        rechecks: int | None = None,
        commit: str = "",
        parent: str = "",
    ) -> tuple[int, str, str]:
        """Record one run before it starts; returns (number, commit, parent). A repeat
        (`rechecks`) reuses its first run's commit."""
        number = self.ledger.next_number()
        if not commit:
            commit, parent = preserve.commit_train_py(self.repo, source, f"manual: {description}")
        try:
            params = values(parse_constants(source))
        except (SyntaxError, ValueError):
            params = {}
        self.ledger.add_experiment(
            ExperimentRecord(
                number=number,
                session_id=None,
                kind="recheck" if rechecks else MANUAL,
                commit_sha=commit,
                description=description,
                parent_commit=parent,
                researcher=MANUAL,
                seed=seed,
                params=params,
                rechecks=rechecks,
            )
        )
        if not rechecks:
            preserve.keep_ref(self.repo, number, commit)
        self.ledger.add_event("created", f"exp {number} (manual): {description}", number=number)
        self.ledger.add_event(
            "started",
            f"exp {number} started (seed {seed})",
            number=number,
            data={"pid": os.getpid(), "seed": seed},
        )
        return number, commit, parent

    def metrics_writer(self, number: int):
        """(on_metrics, flush): metric rows into the ledger, a few at a time."""
        pending: list[dict] = []

        def flush() -> None:
            if pending:
                self.ledger.add_metrics(number, list(pending))
                pending.clear()

        def on_metrics(record: dict) -> None:
            pending.append(record)
            if len(pending) >= FLUSH_EVERY or record.get("progress", 0.0) >= 1.0:
                flush()

        return on_metrics, flush

    def finish(
        self,
        number: int,
        result,
        status: str,
        reason: str,
        score: float | None = None,
        flags: dict | None = None,
    ) -> None:
        """The result row, and the events the loop writes with one."""
        reported = result.reported
        if result.val_bpb is not None:
            self.ledger.add_event(
                "evaluation",
                f"exp {number} sealed val_bpb {result.val_bpb:.6f}",
                number=number,
                data={"val_bpb": result.val_bpb, "reported": reported.get("val_bpb")},
            )
        # The loop's results row (a failure's status passes through as it is); the verdict's
        # extra flags on top.
        record = result_record(result, status, reason, score, "", result.isolation)
        self.ledger.add_result(number, replace(record, flags={**record.flags, **(flags or {})}))
        row = manual_standings(self.ledger).row(number)
        shown = row.score if row and row.score is not None else None
        text = f" {shown:.4f}" if shown is not None else ""
        self.ledger.add_event(
            "verdict",
            f"exp {number} {status}{text}: {reason}",
            number=number,
            data={
                "status": status,
                "score": shown,
                "delta": None,
                "delta_best_before": row.delta_best_before if row else None,
                "val_bpb": result.val_bpb,
                "researcher": MANUAL,
            },
        )

    def new_best_alert(self, number: int, score: float, previous: float | None) -> None:
        was = f" (was {previous:.4f})" if previous is not None else ""
        self.ledger.add_event(
            "alert",
            f"new best {score:.4f}{was}",
            number=number,
            data={"alert": "new_best", "val_bpb": score, "researcher": MANUAL},
        )


def runs_dir(workspace: Workspace, number: int) -> Path:
    return workspace.runs_dir / str(number)
