"""`--wandb [PROJECT]`: each experiment a Weights & Biases run, grouped by the session's tag.

Runs go to PROJECT (default "autolab") with group = tag and job_type = kind, so W&B's group
view shows a session's experiments together. The config is `experiment_config`, the curve is
logged by training step, the summary gets status, reason and the sealed val_bpb, the diff is
the run file train.py.diff and samples (exported afterwards) are the table `samples`. A run
that did not end keep or discard finishes with exit code 1, so W&B shows it failed.

Local files go to <workspace>/.autolab/wandb unless $WANDB_DIR says otherwise. WANDB_MODE=offline
keeps everything local, for `wandb sync` later. wandb's console capture is off: the live view
owns the terminal.
"""

import os
from pathlib import Path

from autolab.errors import UsageError
from autolab.exporters import (
    WANDB_PROJECT,
    Exporter,
    Finished,
    Target,
    experiment_config,
    require,
    run_name,
    step_values,
)

LOCAL_MODES = ("offline", "dryrun", "disabled")  # WANDB_MODE values that need no credentials
DIFF_FILE = "train.py.diff"


class WandbExporter(Exporter):
    def __init__(self, project: str | None = None):
        super().__init__()
        self.wandb = require("wandb", "--wandb", "wandb")
        self.project = project or WANDB_PROJECT
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

    def open(self, view, target: Target):
        return self.wandb.init(
            project=self.project,
            group=target.tag,
            job_type=view.kind,
            name=run_name(view),
            config=experiment_config(view),
            notes=view.description,
            tags=[view.kind],
            dir=os.environ.get("WANDB_DIR") or target.state_dir,
            reinit="create_new",  # a re-check runs while the experiment it checks is still open
            # A new Settings for each run: init keeps its arguments (notes, tags) in the one given.
            settings=self.wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )

    def log_steps(self, run, rows: list[dict]) -> None:
        for row in rows:
            run.log(step_values(row), step=row["step"])

    def close(self, run, finished: Finished) -> None:
        view = finished.view
        run.summary.update(
            {
                "status": view.status,
                "reason": view.reason,
                "val_bpb": view.val_bpb,
                "score": view.score,  # the re-check mean for a re-checked keep
                "delta": finished.delta,  # score - the reference: negative is better
            }
        )
        if finished.diff:
            path = Path(run.dir) / DIFF_FILE
            path.write_text(finished.diff)
            run.save(str(path), base_path=run.dir, policy="now")
        if finished.samples:
            table = self.wandb.Table(columns=["sample"], data=[[t] for t in finished.samples])
            run.log({"samples": table}, step=finished.last_step)
        run.finish(exit_code=0 if view.status in ("keep", "discard", "pruned") else 1)
