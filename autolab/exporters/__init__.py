"""Tracker exporters: `--wandb`, `--mlflow`, `--tensorboard` mirror a research session into the
experiment tracker a team already reads.

Each exporter is a session listener (see ResearchSession.listeners) and an optional extra; the
ledger stays the source of truth, a tracker only gets a copy. Every experiment (baseline,
candidate, re-check, confirm run) becomes one tracker run, opened at its first event and closed
at its verdict (or when the session ends), holding:

- config: number, kind, description, seed, commit, parent commit, researcher, and the
  proposal's params (train.py constants), flat;
- the curve: loss, lr, tokens_per_sec, memory_mb by training step, read from the ledger's
  metrics as step events arrive;
- the verdict: status, reason, the sealed val_bpb, the score and Δ (score − the branch's
  reference, `track.standings`: negative is better);
- the diff: `git diff parent..commit -- train.py` (none for baselines), as a text file;
- samples from the experiment's model, when exported afterwards (live, they would cost the
  session's time).

A tracker writing into the workspace would dirty the git tree and make every experiment
invalid, so local output must live outside it or under .autolab/ (checked at construction).

The same exporters send a finished ledger afterwards: `autolab export` (see `export_ledger`)
replays each session's experiments from the ledger, with samples from each handed-over model.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from autolab import gitrepo
from autolab.errors import UsageError
from autolab.track.ledger import EventRow, ExperimentView, Ledger, SessionView
from autolab.workspace import STATE_DIR, TRAIN_FILE

STEP_METRICS = ("loss", "lr", "tokens_per_sec", "memory_mb")
WANDB_PROJECT = "autolab"


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
class Target:
    """The session an experiment's tracker run belongs to, and where local files may go."""

    session_id: int
    tag: str
    state_dir: Path


@dataclass
class Finished:
    """What a tracker run gets at its close: the verdict (in `view`) and what it changed."""

    view: ExperimentView
    diff: str  # train.py against its parent; "" for a baseline
    last_step: int
    samples: list[str] = field(default_factory=list)  # text from the handed-over model
    delta: float | None = None  # score - the branch's reference (track.standings): negative
    # is better; None without a score or a reference


@dataclass
class OpenRun:
    handle: object  # the tracker's run (a wandb Run, an MLflow run id, a SummaryWriter)
    rows_sent: int = 0  # metric rows of the ledger already sent
    last_step: int = 0


class Exporter:
    """When to open, feed and close a tracker run; subclasses say how, in
    `open(view, target)`, `log_steps(handle, rows)`, `close(handle, finished)`, and (for
    trackers with a run per session) `end_session(session_view)`.

    Live, an exporter is a session listener; `export_ledger` calls the same methods in order."""

    def __init__(self):
        self.runs: dict[int, OpenRun] = {}
        self.seen: set[int] = set()

    def __call__(self, event: EventRow, session) -> None:
        if event.kind == "session_ended":
            for number in list(self.runs):
                self._close(number, session)
            ended = [s for s in session.ledger.sessions() if s.id == session.session_id]
            self.end_session(ended[0])
            return
        number = event.number
        if number is None:
            return
        if number not in self.runs:
            if number in self.seen:  # closed already, or failed to open (one note, not many)
                return
            self.seen.add(number)
            target = Target(session.session_id, session.options.tag, session.workspace.state_dir)
            self.runs[number] = OpenRun(self.open(session.ledger.experiment(number), target))
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
        row = session.standings().row(number)
        finished = Finished(view, train_py_diff(session.repo, view), run.last_step,
                            delta=row.delta if row else None)  # fmt: skip
        self.close(run.handle, finished)

    def open(self, view: ExperimentView, target: Target):
        raise NotImplementedError

    def log_steps(self, handle, rows: list[dict]) -> None:
        raise NotImplementedError

    def close(self, handle, finished: Finished) -> None:
        raise NotImplementedError

    def end_session(self, session: SessionView) -> None:
        """The session has ended (or, exported, all its experiments were sent)."""


def export_ledger(
    ledger: Ledger,
    repo: Path,
    state_dir: Path,
    exporters: list[Exporter],
    sessions: list[SessionView],
    samples=lambda view: [],
    progress=lambda view: None,
) -> int:
    """Send `sessions` of a ledger to `exporters`, experiment by experiment, as the live
    listeners would have; `samples(view)` gives an experiment's samples. Returns the count."""
    from autolab.track.standings import by_number, every_branch

    standing = by_number(every_branch(ledger))
    count = 0
    for session in sessions:
        target = Target(session.id, session.tag, state_dir)
        for view in ledger.experiments(session.id):
            progress(view)
            rows = ledger.metrics(view.number)
            row = standing.get(view.number)
            finished = Finished(
                view, train_py_diff(repo, view), rows[-1]["step"] if rows else 0, samples(view),
                delta=row.delta if row else None,
            )  # fmt: skip
            for exporter in exporters:
                handle = exporter.open(view, target)
                if rows:
                    exporter.log_steps(handle, rows)
                exporter.close(handle, finished)
            count += 1
        for exporter in exporters:
            exporter.end_session(session)
    return count


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


def add_tracker_flags(group) -> None:
    """`--wandb`, `--mlflow`, `--tensorboard`, for `research` (live) and `export`."""
    group.add_argument(
        "--wandb",
        nargs="?",
        const=WANDB_PROJECT,
        metavar="PROJECT",
        help=f"each experiment a W&B run in PROJECT (default when given: {WANDB_PROJECT}), "
        "grouped by session tag; WANDB_MODE=offline keeps it local (default: not sent)",
    )
    group.add_argument(
        "--mlflow",
        metavar="URI",
        help="each experiment an MLflow run nested under its session's run, e.g. "
        "sqlite:///path/mlflow.db or http://host:5000 (default: not sent)",
    )
    group.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="TensorBoard event files with HParams in DIR/<tag>/exp<N>, outside the workspace "
        "or in .autolab/ (default: not written)",
    )
