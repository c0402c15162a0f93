"""`--tensorboard DIR`: TensorBoard event files, one run directory per experiment.

DIR/<tag>/exp0007/ holds the scalars loss, lr, tokens_per_sec and memory_mb by training step,
val_bpb at the last step, the experiment's HParams (its config and params, so TensorBoard's
HPARAMS tab lists every experiment with its sealed val_bpb and draws the parallel-coordinates
view), and text entries: `summary` (a markdown table of the experiment and its verdict),
`train.py.diff` and `samples`. View with `tensorboard --logdir DIR`.

The HParams are written as a session start (and end) per run and no experiment summary, so the
plugin builds the table from the union of all runs' params (it expects at most one experiment
summary in a logdir, and a live session does not know every param in advance).

Written with torch.utils.tensorboard, which needs the `tensorboard` package: the one that also
shows the files, so the extra adds nothing else (tensorboardX would be a second writer).
"""

from pathlib import Path

from autolab.errors import UsageError
from autolab.exporters import (
    Exporter,
    Finished,
    Target,
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

    def open(self, view, target: Target):
        run_dir = self.directory / target.tag / RUN_DIR.format(number=view.number)
        if run_dir.is_dir() and any(run_dir.iterdir()):  # a second copy would double the curves
            raise UsageError(
                f"--tensorboard: {run_dir} already holds exp {view.number}'s events: "
                "pick another DIR or delete that one"
            )
        return self.SummaryWriter(log_dir=str(run_dir))

    def log_steps(self, writer, rows: list[dict]) -> None:
        for row in rows:
            for key, value in step_values(row).items():
                writer.add_scalar(key, value, row["step"], walltime=row.get("time"))

    def close(self, writer, finished: Finished) -> None:
        from torch.utils.tensorboard.summary import hparams

        view, step = finished.view, finished.last_step
        if view.val_bpb is not None:
            writer.add_scalar("val_bpb", view.val_bpb, step)
        if view.score is not None:  # the re-check mean for a re-checked keep (track.standings)
            writer.add_scalar("score", view.score, step)
        if finished.delta is not None:  # score - the reference: negative is better
            writer.add_scalar("delta", finished.delta, step)
        _, start, end = hparams(hparam_values(view), {"val_bpb": view.val_bpb or 0.0})
        writer.file_writer.add_summary(start, step)
        writer.file_writer.add_summary(end, step)
        writer.add_text("summary", summary_markdown(view, finished.delta), step)
        if finished.diff:
            writer.add_text("train.py.diff", "```diff\n" + finished.diff + "```", step)
        if finished.samples:
            writer.add_text("samples", samples_markdown(finished.samples), step)
        writer.close()


def hparam_values(view) -> dict:
    """The config as HParams take it (numbers, strings, booleans; no None), and the status."""
    values = {"status": view.status}
    for key, value in experiment_config(view).items():
        if value is None:
            continue
        values[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return values


def summary_markdown(view, delta: float | None = None) -> str:
    """The experiment and its verdict as a two-column markdown table (TensorBoard renders it)."""
    verdict = {
        "status": view.status,
        "reason": view.reason,
        "val_bpb": view.val_bpb,
        "score": view.score,
        "delta": delta,
    }
    lines = ["| | |", "|---|---|"]
    for key, value in {**experiment_config(view), **verdict}.items():
        text = str(value).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)


def samples_markdown(samples: list[str]) -> str:
    """Each sample as a code block, so newlines and markdown characters show as written."""
    return "\n\n".join("```\n" + text.strip("\n") + "\n```" for text in samples)
