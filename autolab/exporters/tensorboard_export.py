"""`--tensorboard DIR`: TensorBoard event files, one run directory per experiment.

DIR/<tag>/exp0007/ holds the scalars loss, lr and tokens_per_sec by training step, val_bpb at the
last step, and two text entries: `summary` (a markdown table of the experiment and its verdict)
and `train.py.diff`. View with `tensorboard --logdir DIR`.

Written with torch.utils.tensorboard, which needs the `tensorboard` package: the one that also
shows the files, so the extra adds nothing else (tensorboardX would be a second writer).
"""

from pathlib import Path

from autolab.exporters import (
    Exporter,
    check_outside_tree,
    experiment_config,
    require,
    step_values,
)

RUN_DIR = "exp{number:04d}"  # zero-padded so TensorBoard lists experiments in order


class TensorBoardExporter(Exporter):
    def __init__(self, directory: str | Path, workspace: Path):
        super().__init__()
        require("tensorboard", "--tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.SummaryWriter = SummaryWriter
        self.directory = check_outside_tree(Path(directory), workspace, "--tensorboard")

    def __repr__(self) -> str:
        return f"TensorBoardExporter({str(self.directory)!r})"

    def open(self, view, session):
        run_dir = self.directory / session.options.tag / RUN_DIR.format(number=view.number)
        return self.SummaryWriter(log_dir=str(run_dir))

    def log_steps(self, writer, rows: list[dict]) -> None:
        for row in rows:
            for key, value in step_values(row).items():
                writer.add_scalar(key, value, row["step"], walltime=row.get("time"))

    def close(self, writer, view, diff: str, last_step: int) -> None:
        if view.val_bpb is not None:
            writer.add_scalar("val_bpb", view.val_bpb, last_step)
        writer.add_text("summary", summary_markdown(view), last_step)
        if diff:
            writer.add_text("train.py.diff", "```diff\n" + diff + "```", last_step)
        writer.close()


def summary_markdown(view) -> str:
    """The experiment and its verdict as a two-column markdown table (TensorBoard renders it)."""
    verdict = {"status": view.status, "reason": view.reason, "val_bpb": view.val_bpb}
    lines = ["| | |", "|---|---|"]
    for key, value in {**experiment_config(view), **verdict}.items():
        text = str(value).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)
