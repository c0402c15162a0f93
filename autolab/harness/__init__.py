"""The fixed harness: the only autolab module a recipe imports.

It owns the budget clock, the batches, the metric and the summary; see `Run`. Its names load on
first use: the runner imports the harness's settings and handover without paying for torch.
"""

import importlib

__all__ = ["Run", "evaluate_bpb"]
_WHERE = {"Run": "autolab.harness.run", "evaluate_bpb": "autolab.harness.evaluate"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
