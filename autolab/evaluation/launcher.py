"""Starting the sealed evaluator, from the side that runs experiments.

The evaluator is a process of its own running only autolab code: a child of the zygote
(autolab.zygote) with torch already imported, forked once the experiment's training process has
ended, or, in the sandbox, once the scored program is out of its reach (autolab.evaluation.early).
It works in an empty scratch directory and learns where the validation split is only from its
job. It reads the sealed store (autolab.data.sealed_store) only, checked against the hashes the
runner took when the session's workers started. Its verdict is the last line of its output, one
JSON object.
"""

import json
import subprocess
import threading
from pathlib import Path

from autolab.data.sealed_store import changed_files
from autolab.harness.settings import RunSettings
from autolab.zygote.client import ForkedChild, Zygote, ask_child


class SealedEvaluator:
    def __init__(
        self, settings: RunSettings, val_path: Path, zygote: Zygote, expected: dict[str, str]
    ):
        self.settings = settings
        self.val_path = val_path
        self.zygote = zygote
        self.expected = expected  # the sealed store's hashes, as the session first found them
        self.child: ForkedChild | None = None
        self._cancelled = False
        self._lock = threading.Lock()  # scoring may run on a thread of its own (early.py)

    def score(self, timeout: float) -> dict:
        """The evaluator's verdict: {"status": "ok", "val_bpb": ...} or status and reason."""
        sealed_dir = self.val_path.parent
        changed = changed_files(sealed_dir, self.expected)
        if not self.expected:
            reason = (
                f"the sealed store {sealed_dir} has no hashes (an older autolab prepared it): "
                "prepare the dataset again (remove that folder)"
            )
            return {"status": "invalid", "reason": reason, "sealed_changed": True}
        if changed:
            reason = (
                f"the sealed data changed ({', '.join(changed)} in {sealed_dir}): no score can "
                "be trusted; prepare the dataset again (remove that folder)"
            )
            return {"status": "invalid", "reason": reason, "sealed_changed": True}
        if self._cancelled:
            return {"status": "invalid", "reason": "the sealed evaluation was cancelled"}
        job = {
            "run_dir": str(self.settings.run_dir),
            "data_dir": str(sealed_dir),  # meta.json and token_bytes.npy: the sealed copies
            "val": str(self.val_path),
            "device": self.settings.scoring_device,
            "threads": self.settings.threads,  # the run's share of the cores, as its training had
        }
        try:
            lines, returncode = ask_child(
                self.zygote, "evaluate", job, "autolab-eval-", timeout, started=self._started
            )
        except subprocess.TimeoutExpired:
            return {"status": "invalid", "reason": "the sealed evaluation timed out"}
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            tail = lines[-1] if lines else f"exit code {returncode}, no output"
            return {"status": "invalid", "reason": f"sealed evaluation failed: {tail}"[:500]}

    def _started(self, child: ForkedChild) -> None:
        with self._lock:
            self.child = child
            cancelled = self._cancelled
        if cancelled:  # cancelled while it was being forked
            child.kill()

    def cancel(self) -> None:
        """End the evaluator without a verdict (scoring timed out, or the run was stopped)."""
        with self._lock:
            self._cancelled = True
            child = self.child
        if child is not None:
            child.kill()
