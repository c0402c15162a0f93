"""Tracking: the append-only ledger every view reads, and the results.tsv built from it."""

from autolab.track.ledger import (
    EventRow,
    ExperimentRecord,
    ExperimentView,
    Ledger,
    LedgerError,
    NoiseRow,
    ResultRecord,
    SessionView,
    ledger_path,
)
from autolab.track.results_tsv import format_results_tsv, parse_results_tsv, write_results_tsv

__all__ = [
    "EventRow",
    "ExperimentRecord",
    "ExperimentView",
    "Ledger",
    "LedgerError",
    "NoiseRow",
    "ResultRecord",
    "SessionView",
    "format_results_tsv",
    "ledger_path",
    "parse_results_tsv",
    "write_results_tsv",
]
