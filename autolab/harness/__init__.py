"""The fixed harness: the only autolab module a recipe imports.

It owns the budget clock, the batches, the metric and the summary; see `Run`.
"""

from autolab.harness.evaluate import evaluate_bpb
from autolab.harness.run import Run

__all__ = ["Run", "evaluate_bpb"]
