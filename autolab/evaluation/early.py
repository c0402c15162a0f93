"""Scoring a run's model while its training process is still finishing.

A run hands over its scored program before its sampler program (autolab.harness.handover), and
the sampler's export is about a third of a run's hand-over. In the sandbox the runner does not
wait for it: as soon as the scored program is there, it copies that file and the model's info
out of the experiment's reach into the run directory and starts the sealed evaluator on the
copies, while the experiment exports its sampler.

The copies are the model of record. The final collect leaves the experiment's own files of those
names behind (autolab.sandbox.layout), so whatever it writes there afterwards is neither scored
nor sampled later. The verdict counts only if the training process then ends as a run must
(exit 0, in time, with a live zygote); otherwise the evaluator is cancelled.

Without the sandbox, the training process writes straight into the run directory and could
change a file while it is scored; on a GPU, it holds its memory until it ends, and an evaluator
beside it could run out. In both cases the runner scores only after it has ended, as before.
"""

import os
import shutil
import stat
import threading
from pathlib import Path

from autolab.evaluation.launcher import SealedEvaluator
from autolab.harness.files import MODEL_FILE, MODEL_INFO_FILE

TAKEN_FIRST = (MODEL_INFO_FILE, MODEL_FILE)  # the harness writes them in this order


class EarlyScoring:
    def __init__(self, staged_run: Path, run_dir: Path, evaluator: SealedEvaluator, timeout: float):
        self.staged_run = Path(staged_run)  # the sandbox's run directory, seen from outside
        self.run_dir = Path(run_dir)
        self.evaluator = evaluator
        self.timeout = timeout
        self.taken: list[str] = []  # the names copied out; the final collect leaves them behind
        self._tried = False
        self._thread: threading.Thread | None = None
        self._verdict: dict | None = None
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def poll(self) -> None:
        """Called while the experiment runs: start scoring once the scored program is there."""
        if self._tried or not (self.staged_run / MODEL_FILE).exists():
            return
        self._tried = True  # one try: a file that cannot be taken now is the final collect's
        self.run_dir.mkdir(parents=True, exist_ok=True)
        taken = [n for n in TAKEN_FIRST if _copy_regular(self.staged_run / n, self.run_dir / n)]
        if MODEL_FILE not in taken:
            for name in taken:
                (self.run_dir / name).unlink()
            return
        self.taken = taken
        self._thread = threading.Thread(target=self._score, name="early-scoring", daemon=True)
        self._thread.start()

    def _score(self) -> None:
        try:
            self._verdict = self.evaluator.score(timeout=self.timeout)
        except BaseException as err:  # handed to the runner's thread by verdict()
            self._error = err

    def verdict(self) -> dict:
        """The evaluator's verdict (waits for it); only once `started`."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._verdict

    def cancel(self) -> None:
        """End the evaluator without a verdict; a no-op once it has scored or if never started."""
        self.evaluator.cancel()
        if self._thread is not None:
            self._thread.join()


def _copy_regular(source: Path, destination: Path) -> bool:
    """Copy `source` if it is a regular file, never following a link: the experiment is still
    running and may swap a name for a link to a file of the runner's between a check and a
    copy. Whole or not at all (a temporary name, then renamed)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a fifo must not block
    except OSError:
        return False
    partial = destination.with_name(destination.name + ".partial")
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return False
        with open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 2**20)
    partial.replace(destination)
    return True
