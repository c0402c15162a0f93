"""The session's one writer: every ledger row and event of a research session goes through here.

An event is written once and the row as written is handed to each listener (notifiers, tracker
exporters); no listener reads it back. A listener's failure is its own: it is recorded as a
note and never ends the session. One writer per session is also what lets experiments run as
independent units of work later: they report to the recorder, only the recorder writes.
"""

from pathlib import Path

from autolab.experiment import ExperimentResult
from autolab.track.ledger import EventRow, ExperimentRecord, Ledger, ResultRecord
from autolab.track.results_tsv import write_results_tsv
from autolab.track.standings import Standings


class Recorder:
    def __init__(self, ledger: Ledger, tag: str, results_tsv: Path):
        self.ledger = ledger
        self.tag = tag  # the branch whose standings the verdicts quote
        self.results_tsv = results_tsv
        self.session_id: int | None = None  # set once the session has its row
        # Called as listener(event, subject) with every EventRow recorded; `subject` is the
        # session, for listeners that want its standings or workspace.
        self.listeners: list = []
        self.subject = None

    def event(self, kind: str, message: str, number: int | None = None, data=None) -> EventRow:
        row = self.ledger.record_event(kind, message, self.session_id, number, data)
        for listener in self.listeners:
            try:
                listener(row, self.subject)
            except Exception as err:  # a notifier's failure must not end a night's research
                self.ledger.record_event(
                    "note", f"listener {listener!r} failed: {err}", self.session_id
                )
        return row

    def note(self, message: str) -> EventRow:
        return self.event("note", message)

    def experiment(self, record: ExperimentRecord) -> None:
        self.ledger.add_experiment(record)
        self.event("created", f"exp {record.number}: {record.description}", record.number)

    def metrics(self, number: int, records: list[dict]) -> None:
        """A batch of step records, and one step event for the last of them."""
        if not records:
            return
        self.ledger.add_metrics(number, records)
        last = records[-1]
        self.event(
            "step",
            f"exp {number}  step {last.get('step')} ({100 * last.get('progress', 0):.0f}%)  "
            f"loss {last.get('loss', float('nan')):.3f}",
            number,
            {k: last.get(k) for k in ("step", "progress", "loss", "lr", "tokens_per_sec",
                                      "memory_mb")},
        )  # fmt: skip

    def result(self, number: int, result: ExperimentResult, record: ResultRecord) -> None:
        """The result row, its verdict event (score and Δ as the standings give them) and
        results.tsv, in that order."""
        self.ledger.add_result(number, record)
        message, _, data = verdict_event(
            self.ledger.standings(self.tag), number, record.status, record.reason
        )
        self.event("verdict", message, number, {**data, "val_bpb": result.val_bpb})
        self.write_tsv()

    def write_tsv(self) -> None:
        write_results_tsv(self.ledger, self.results_tsv)


def verdict_event(standings: Standings, number: int, status: str, reason: str):
    """(message, number, data) of a verdict event: the score and Δ the standings give."""
    row = standings.row(number)
    score = row.score if row else None
    delta = row.delta if row else None
    text = f" {score:.4f}" if score is not None else ""
    text += f" (Δ {delta:+.4f} vs reference)" if delta is not None else ""
    data = {"status": status, "score": score, "delta": delta,
            "delta_best_before": row.delta_best_before if row else None}  # fmt: skip
    if reason.startswith(f"{status} "):  # "exp 5 pruned at 25% of its budget", not "pruned: pruned"
        return f"exp {number} {status}{text} {reason[len(status) + 1 :]}", number, data
    return f"exp {number} {status}{text}: {reason}", number, data


def result_record(result: ExperimentResult, status: str, reason: str, score: float | None,
                  device: str, isolation: str) -> ResultRecord:  # fmt: skip
    """The results row of a run: the sealed score, the rest as the run reported it."""
    reported = result.reported
    return ResultRecord(
        status="keep" if status == "ok" else status,
        reason=reason,
        val_bpb=result.val_bpb,
        reported_val_bpb=_number(reported.get("val_bpb")),
        peak_memory_mb=_number(reported.get("peak_memory_mb")),
        wall_seconds=result.wall_seconds,
        training_seconds=_number(reported.get("training_seconds")),
        total_seconds=_number(reported.get("total_seconds")),
        tokens_per_sec=_number(reported.get("tokens_per_sec")),
        num_steps=_number(reported.get("num_steps")),
        num_params_M=_number(reported.get("num_params_M")),
        hardware=str(reported.get("device", device)),
        flags={**result.flags, "isolation": result.isolation or isolation},
        score=score,
    )


def _number(value):
    return value if isinstance(value, int | float) else None
