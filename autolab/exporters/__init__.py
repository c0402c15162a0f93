"""Tracker exporters: `--wandb`, `--mlflow`, `--tensorboard` mirror a research session into the
experiment tracker a team already reads.

Each exporter is a session listener (see ResearchSession.listeners) and an optional extra; the
ledger stays the source of truth, a tracker only gets a copy. Every experiment (baseline,
candidate, re-check) becomes one tracker run, opened at its first event and closed at its
verdict (or when the session ends), holding:

- config: number, kind, description, seed, commit, parent commit, researcher, and the
  proposal's params (train.py constants), flat;
- the curve: loss, lr, tokens_per_sec by training step, read from the ledger's metrics as
  step events arrive;
- the verdict: status, reason and the sealed val_bpb;
- the diff: `git diff parent..commit -- train.py` (none for baselines), as a text file.

A tracker writing into the workspace would dirty the git tree and make every experiment
invalid, so local output must live outside it or under .autolab/ (checked at construction).
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.track.ledger import EventRow, ExperimentView
from autolab.workspace import STATE_DIR, TRAIN_FILE

STEP_METRICS = ("loss", "lr", "tokens_per_sec")


def require(module: str, flag: str, extra: str):
    """Import a tracker's package, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"{flag} needs the {extra} package: pip install 'autolab[{extra}]'"
        ) from None


def check_outside_tree(path: Path, workspace: Path, flag: str) -> Path:
    """`path`, resolved; refused when the experiments' git tree would see the files."""
    path, workspace = path.resolve(), workspace.resolve()
    if path.is_relative_to(workspace) and not path.is_relative_to(workspace / STATE_DIR):
        raise UsageError(
            f"{flag} {path} is inside the workspace, where new files make experiments invalid: "
            f"pick a path outside it or under {workspace / STATE_DIR}"
        )
    return path


def experiment_config(view: ExperimentView) -> dict:
    """What a tracker shows as the run's config: the experiment, then its params."""
    return {
        "number": view.number,
        "kind": view.kind,
        "description": view.description,
        "seed": view.seed,
        "commit": view.commit_sha,
        "parent_commit": view.parent_commit,
        "researcher": view.researcher,
        **view.params,
    }


def train_py_diff(repo: Path, view: ExperimentView) -> str:
    """The change the experiment tried; empty for a baseline (it has no parent)."""
    if not view.parent_commit or not view.commit_sha:
        return ""
    diff = gitrepo.git(repo, "diff", view.parent_commit, view.commit_sha, "--", TRAIN_FILE)
    return diff + "\n" if diff else ""


def step_values(row: dict) -> dict:
    """The curve's values in one metrics row; a NaN loss is stored as NULL and left out."""
    return {k: row[k] for k in STEP_METRICS if row.get(k) is not None}


@dataclass
class OpenRun:
    handle: object  # the tracker's run (a wandb Run, an MLflow run id, a SummaryWriter)
    rows_sent: int = 0  # metric rows of the ledger already sent
    last_step: int = 0


class Exporter:
    """When to open, feed and close a tracker run; subclasses say how, in `open`,
    `log_steps(handle, rows)` and `close(handle, view, diff, last_step)`."""

    def __init__(self):
        self.runs: dict[int, OpenRun] = {}
        self.seen: set[int] = set()

    def __call__(self, event: EventRow, session) -> None:
        if event.kind == "session_ended":
            for number in list(self.runs):
                self._close(number, session)
            return
        number = event.number
        if number is None:
            return
        if number not in self.runs:
            if number in self.seen:  # closed already, or failed to open (one note, not many)
                return
            self.seen.add(number)
            self.runs[number] = OpenRun(self.open(session.ledger.experiment(number), session))
        run = self.runs[number]
        # The whole curve from the ledger: a step event carries only the last row of a batch.
        rows = session.ledger.metrics(number)[run.rows_sent :]
        if rows:
            self.log_steps(run.handle, rows)
            run.rows_sent += len(rows)
            run.last_step = rows[-1]["step"]
        if event.kind == "verdict":
            self._close(number, session)

    def _close(self, number: int, session) -> None:
        run = self.runs.pop(number)
        view = session.ledger.experiment(number)
        self.close(run.handle, view, train_py_diff(session.repo, view), run.last_step)

    def open(self, view: ExperimentView, session):
        raise NotImplementedError

    def log_steps(self, handle, rows: list[dict]) -> None:
        raise NotImplementedError

    def close(self, handle, view: ExperimentView, diff: str, last_step: int) -> None:
        raise NotImplementedError


def run_name(view: ExperimentView) -> str:
    return f"{view.number} {view.description}"


def exporters_from_flags(args) -> list:
    """The listeners that `--wandb`, `--mlflow` and `--tensorboard` ask for."""
    workspace = Path(args.workspace)
    exporters = []
    if args.wandb is not None:
        from autolab.exporters.wandb_export import WandbExporter

        exporters.append(WandbExporter(args.wandb))
    if args.mlflow:
        from autolab.exporters.mlflow_export import MlflowExporter

        exporters.append(MlflowExporter(args.mlflow, workspace))
    if args.tensorboard:
        from autolab.exporters.tensorboard_export import TensorBoardExporter

        exporters.append(TensorBoardExporter(args.tensorboard, workspace))
    return exporters
