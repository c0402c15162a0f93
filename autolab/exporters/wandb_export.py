"""`--wandb [PROJECT]`: each experiment a Weights & Biases run, grouped by the session's tag.

Runs go to PROJECT (default "autolab") with group = tag and job_type = kind. The config is
`experiment_config`, the curve is logged by training step, the summary gets status, reason and
the sealed val_bpb, and the diff is the run file train.py.diff. A run that did not end keep or
discard finishes with exit code 1, so W&B shows it failed.

Local files go to <workspace>/.autolab/wandb unless $WANDB_DIR says otherwise. WANDB_MODE=offline
keeps everything local, for `wandb sync` later. wandb's console capture is off: the live view
owns the terminal.
"""

import os
from pathlib import Path

from autolab.errors import UsageError
from autolab.exporters import Exporter, experiment_config, require, run_name, step_values

DEFAULT_PROJECT = "autolab"
LOCAL_MODES = ("offline", "dryrun", "disabled")  # WANDB_MODE values that need no credentials
DIFF_FILE = "train.py.diff"


class WandbExporter(Exporter):
    def __init__(self, project: str | None = None):
        super().__init__()
        self.wandb = require("wandb", "--wandb", "wandb")
        self.project = project or DEFAULT_PROJECT
        # Online without credentials, wandb.init would fail at the first experiment (or prompt).
        if os.environ.get("WANDB_MODE") not in LOCAL_MODES and not self.wandb.login(
            prompt=False, verify=False
        ):
            raise UsageError(
                "--wandb found no W&B credentials: run `wandb login` or set WANDB_API_KEY "
                "(or WANDB_MODE=offline, then `wandb sync`)"
            )

    def __repr__(self) -> str:
        return f"WandbExporter({self.project!r})"

    def open(self, view, session):
        return self.wandb.init(
            project=self.project,
            group=session.options.tag,
            job_type=view.kind,
            name=run_name(view),
            config=experiment_config(view),
            notes=view.description,
            tags=[view.kind],
            dir=os.environ.get("WANDB_DIR") or session.workspace.state_dir,
            reinit="create_new",  # a re-check runs while the experiment it checks is still open
            # A new Settings for each run: init keeps its arguments (notes, tags) in the one given.
            settings=self.wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )

    def log_steps(self, run, rows: list[dict]) -> None:
        for row in rows:
            run.log(step_values(row), step=row["step"])

    def close(self, run, view, diff: str, last_step: int) -> None:
        run.summary.update({"status": view.status, "reason": view.reason, "val_bpb": view.val_bpb})
        if diff:
            path = Path(run.dir) / DIFF_FILE
            path.write_text(diff)
            run.save(str(path), base_path=run.dir, policy="now")
        run.finish(exit_code=0 if view.status in ("keep", "discard") else 1)
