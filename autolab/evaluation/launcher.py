"""Starting the sealed evaluator, from the side that runs experiments.

The evaluator is a fresh Python process running only autolab code. It is started once the
experiment is training (not earlier: the two start-ups would compete for the same cores), so
that its own start-up (importing torch and torch.export, about two seconds) overlaps training
instead of adding to every experiment's overhead; until it is told to score it touches nothing
of the run, not even the validation split. It runs with `-P` in an empty scratch directory, so
nothing the experiment wrote can shadow autolab's modules in it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from autolab.harness.settings import RunSettings

START_SIGNAL = "score\n"


class SealedEvaluator:
    def __init__(self, settings: RunSettings, val_path: Path):
        self.settings = settings
        self.val_path = val_path
        self.process: subprocess.Popen | None = None
        self.scratch = ""

    def start(self) -> None:
        """Start the process (it warms up, then waits); a second call does nothing."""
        if self.process is not None:
            return
        settings, val_path = self.settings, self.val_path
        self.scratch = tempfile.mkdtemp(prefix="autolab-eval-")
        command = [
            sys.executable, "-P", "-m", "autolab.evaluation.sealed", "--wait",
            "--run-dir", str(settings.run_dir),
            "--data-dir", str(settings.data_dir),
            "--val", str(val_path),
            "--device", settings.device,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLAB_")}
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.scratch,
            env=env,
            start_new_session=True,
        )

    def score(self, timeout: float) -> dict:
        """The evaluator's verdict: {"status": "ok", "val_bpb": ...} or status and reason."""
        self.start()
        try:
            out, err = self.process.communicate(START_SIGNAL, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            return {"status": "invalid", "reason": "the sealed evaluation timed out"}
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            tail = (err.strip().splitlines() or ["no output"])[-1]
            return {"status": "invalid", "reason": f"sealed evaluation failed: {tail}"[:500]}

    def cancel(self) -> None:
        """End the evaluator without scoring (the run failed, or scoring timed out)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream and not stream.closed:
                stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
