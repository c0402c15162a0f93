"""The experiment's sandbox: train.py and everything it starts run in Linux namespaces.

autolab's score is worth something only if the code being scored cannot reach the referee:
the loop, the ledger, git, the sealed evaluator, the sealed split and every file the evaluator
reads. An experiment runs inside bubblewrap (`bwrap`) with its own user id, PID, network, IPC
and mount namespaces. What it sees is a list, not a filter (`layout.py`): the system and the
Python environment read-only, its dataset's public shards read-only, and one writable staging
directory that the runner empties before every experiment. Data that ships inside installed
packages (the names and Shakespeare packages) is covered with empty directories. The runner's
files, the workspace, the ledger, other runs and the sealed split are not mounted at all.

`docs/security.md` is the threat model: what this protects against and what it does not.
"""

from autolab.sandbox.availability import ISOLATIONS, choose_isolation, sandbox_unavailable
from autolab.sandbox.layout import SandboxLayout

__all__ = ["ISOLATIONS", "SandboxLayout", "choose_isolation", "sandbox_unavailable"]
