"""`--mlflow URI`: each experiment an MLflow run, in the MLflow experiment named after the tag,
nested under one parent run per research session ("session N"), as MLflow shows sweeps.

URI is any MLflow tracking URI: `sqlite:///path/mlflow.db` for a local store (mlflow-skinny
does it with the SQLAlchemy and alembic that optuna brings), `http://host:5000` for a server.
Params are `experiment_config`; metrics are the curve by training step and val_bpb at the
last step; tags are status, reason, kind, description (also as the run's MLflow description)
and the commit; train.py.diff and samples.txt are text artifacts. Exported afterwards, a run
keeps the experiment's own start and end times. Run status: FINISHED for keep and discard,
FAILED for crash, timeout and invalid, KILLED for interrupted (or stopped with the session).

For a sqlite store, a new MLflow experiment keeps its artifacts in mlartifacts/ beside the
database file (MLflow's default, ./mlruns, would land in the workspace).
"""

import time
from pathlib import Path
from urllib.parse import urlparse

from autolab.errors import UsageError
from autolab.exporters import (
    Exporter,
    Finished,
    Target,
    check_outside_tree,
    experiment_config,
    require,
    run_name,
    step_values,
)

DIFF_FILE = "train.py.diff"
SAMPLES_FILE = "samples.txt"
SESSION_STATUS = {"succeeded": "FINISHED", "cancelled": "KILLED", "failed": "FAILED"}
# MLflow's run status for an experiment's; crash, timeout and invalid are FAILED. A run still
# "running" when the session ended was stopped with it.
RUN_STATUS = {
    "keep": "FINISHED",
    "discard": "FINISHED",
    "interrupted": "KILLED",
    "pruned": "KILLED",  # stopped early by --prune
    "running": "KILLED",
}
PARAM_LIMIT = 6000  # characters MLflow keeps of a param value


class MlflowExporter(Exporter):
    def __init__(self, uri: str, workspace: Path):
        super().__init__()
        require("mlflow", "--mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.artifacts = None
        path = local_path(uri)
        if path is not None:
            path = check_outside_tree(path, workspace, "--mlflow")
            if uri.startswith("sqlite:"):
                self.artifacts = (path.parent / "mlartifacts").as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        try:  # reach the store now, so a bad URI stops the session before it starts
            self.client.search_experiments(max_results=1)
        except Exception as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UsageError(f"--mlflow {uri}: {first_line}") from err
        self.experiment_ids: dict[str, str] = {}
        self.parent_runs: dict[int, str] = {}  # session id -> its MLflow run

    def __repr__(self) -> str:
        return f"MlflowExporter({self.uri!r})"

    def _experiment_id(self, tag: str) -> str:
        if tag not in self.experiment_ids:
            found = self.client.get_experiment_by_name(tag)
            self.experiment_ids[tag] = (
                found.experiment_id
                if found
                else self.client.create_experiment(tag, artifact_location=self.artifacts)
            )
        return self.experiment_ids[tag]

    def _parent_run(self, target: Target, started: float) -> str:
        if target.session_id not in self.parent_runs:
            run = self.client.create_run(
                self._experiment_id(target.tag),
                start_time=int(1000 * started),
                run_name=f"session {target.session_id}",
                tags={"kind": "session", "session": str(target.session_id)},
            )
            self.parent_runs[target.session_id] = run.info.run_id
        return self.parent_runs[target.session_id]

    def open(self, view, target: Target) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(
            self._experiment_id(target.tag),
            start_time=int(1000 * view.created),
            run_name=run_name(view),
            tags={
                "kind": view.kind,
                "description": view.description,
                "mlflow.note.content": view.description,
                "mlflow.source.git.commit": view.commit_sha,
                "mlflow.parentRunId": self._parent_run(target, view.created),
            },
        )
        params = [
            Param(key, str(value)[:PARAM_LIMIT])
            for key, value in experiment_config(view).items()
            if value is not None and value != ""
        ]
        self.client.log_batch(run.info.run_id, params=params)
        return run.info.run_id

    def log_steps(self, run_id: str, rows: list[dict]) -> None:
        from mlflow.entities import Metric

        metrics = [
            Metric(key, value, int(1000 * (row.get("time") or time.time())), row["step"])
            for row in rows
            for key, value in step_values(row).items()
        ]
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)

    def close(self, run_id: str, finished: Finished) -> None:
        view = finished.view
        self.client.set_tag(run_id, "status", view.status)
        self.client.set_tag(run_id, "reason", view.reason)
        if view.val_bpb is not None:
            self.client.log_metric(run_id, "val_bpb", view.val_bpb, step=finished.last_step)
        if view.score is not None:  # the re-check mean for a re-checked keep (track.standings)
            self.client.log_metric(run_id, "score", view.score, step=finished.last_step)
        if finished.delta is not None:  # score - the reference: negative is better
            self.client.log_metric(run_id, "delta", finished.delta, step=finished.last_step)
        if finished.diff:
            self.client.log_text(run_id, finished.diff, DIFF_FILE)
        if finished.samples:
            self.client.log_text(run_id, "\n\n".join(finished.samples) + "\n", SAMPLES_FILE)
        end = int(1000 * view.finished) if view.finished else None
        self.client.set_terminated(run_id, RUN_STATUS.get(view.status, "FAILED"), end_time=end)

    def end_session(self, session) -> None:
        run_id = self.parent_runs.pop(session.id, None)
        if run_id is None:
            return
        self.client.set_tag(run_id, "status", session.status or "running")
        self.client.set_tag(run_id, "reason", session.reason)
        if session.noise:
            self.client.log_metric(run_id, "baseline_bpb", session.noise.baseline_bpb)
            self.client.log_metric(run_id, "noise_spread", session.noise.spread)
        end = int(1000 * session.ended) if session.ended else None
        self.client.set_terminated(
            run_id, SESSION_STATUS.get(session.status, "KILLED"), end_time=end
        )


def local_path(uri: str) -> Path | None:
    """Where a local tracking store writes: a plain path, file: or sqlite:///; None for a server."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    if parsed.scheme == "sqlite":
        return Path(uri.removeprefix("sqlite:///"))
    return None
