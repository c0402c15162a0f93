"""One experiment as a unit of work: a commit's train.py, run and scored sealed, then checked
for anything it changed outside its run directory.

A trial writes nothing to the ledger: its metrics go to a callback and its outcome is the
`ExperimentResult` it returns, so whoever runs it (the loop, one at a time or several at once
from worker threads: research.parallel) decides what gets recorded. The `Runner` holds what
trials share: the prepared data, the warm zygotes and the snapshot of autolab's own files. A
session with several workers has one Runner per slot, each with its own zygotes, its own git
worktree (`checkout`) and its own share of the machine (`slot`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autolab.experiment import ExperimentResult, run_experiment
from autolab.harness.settings import RunSettings
from autolab.research import branch as git_branch
from autolab.research.integrity import PackageGuard
from autolab.research.slots import Slot
from autolab.workers import Workers
from autolab.workspace import TRAIN_FILE, Workspace, prepare_data


@dataclass(frozen=True)
class Trial:
    number: int
    kind: str  # baseline | candidate | recheck | confirm
    commit: str
    description: str
    seed: int
    # The train.py to run: the workspace's (the loop checks the commit out there), or a copy
    # of the commit's elsewhere (a confirmation leaves the workspace as it is).
    script: Path | None = None


class Runner:
    """Runs trials in the workspace with the session's isolation, zygotes started once (a dead
    one is replaced on the next request, and said so in `replaced`)."""

    def __init__(self, workspace: Workspace, budget_seconds: float, device: str,
                 isolation: str, wall_limit: float | None = None,
                 train_and_score: Callable[..., ExperimentResult] | None = None,
                 slot: Slot | None = None, checkout: Path | None = None,
                 workers_in_flight: int = 1):  # fmt: skip
        self.workspace = workspace
        self.budget_seconds = budget_seconds
        self.device = device
        self.isolation = isolation
        self.wall_limit = wall_limit
        # run_experiment here, or another with its signature (`--ray`: the cluster's RayRunner)
        self.train_and_score = train_and_score or run_experiment
        self.data = prepare_data(workspace)
        self.guard = PackageGuard()
        self.workers: Workers | None = None
        # Its share of the machine (alone: torch's own thread count); where its train.py is
        # checked out (None: the workspace); how many experiments share the machine.
        self.slot = slot or Slot(0, 0)
        self.checkout = checkout
        self.workers_in_flight = workers_in_flight

    def run(
        self,
        trial: Trial,
        on_metrics: Callable[[dict], None],
        should_stop: Callable[[], bool],
    ) -> ExperimentResult:
        run_dir = self.workspace.runs_dir / str(trial.number)
        settings = RunSettings(
            data_dir=self.data.data_dir,
            run_dir=run_dir,
            budget_seconds=self.budget_seconds,
            device=self.device,
            seed=trial.seed,
            threads=self.slot.threads,
            gpu=self.slot.gpu,
        )
        self.guard.take()
        result = self.train_and_score(
            trial.script or (self.checkout or self.workspace.root) / TRAIN_FILE,
            settings,
            self.data.val_path,
            wall_limit=self.wall_limit,
            on_metrics=on_metrics,
            should_stop=should_stop,
            workers=self._workers(),
        )
        if result.flags.get("hardware"):
            result.flags["hardware"]["workers"] = self.workers_in_flight
        return self._check_integrity(result)

    def replaced(self) -> list[str]:
        """What happened to zygotes that died since the last call (never a silent restart)."""
        messages = list(self.workers.replaced) if self.workers else []
        if self.workers:
            self.workers.replaced.clear()
        return messages

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()

    def _workers(self) -> Workers:
        if self.workers is None:
            # Referee paths the sandbox must never show, should any fall under what it shows.
            hidden = [self.data.val_path.parent, self.workspace.root, self.workspace.state_dir]
            self.workers = Workers(
                self.isolation, self.data.data_dir, self.data.val_path, self.device, hidden
            )
            self.workers.start()
        return self.workers

    def _check_integrity(self, result: ExperimentResult) -> ExperimentResult:
        """Files the experiment changed outside its run directory make it invalid."""
        run_dir = result.run_dir
        tree = self.checkout or self.workspace.root
        changed = git_branch.quarantine_changes(tree, run_dir / "workspace-changes")
        tampered = self.guard.changed(run_dir / "autolab-changes")
        if tampered:
            names = ", ".join(tampered[:3])
            return self._invalid(
                result,
                f"modified autolab's own code: {names}",
                autolab_changed=(
                    f"autolab's own code changed while experiment {run_dir.name} ran ({names}; "
                    f"copies in {run_dir / 'autolab-changes'}): if that was you, start the "
                    "session again; if not, reinstall autolab"
                ),
            )
        if changed:
            names = ", ".join(changed[:3])
            return self._invalid(result, f"changed files outside train.py: {names}")
        return result

    @staticmethod
    def _invalid(result: ExperimentResult, reason: str, **flags) -> ExperimentResult:
        return ExperimentResult(
            "invalid",
            reason,
            run_dir=result.run_dir,
            reported=result.reported,
            wall_seconds=result.wall_seconds,
            flags={**result.flags, **flags},
            isolation=result.isolation,
        )


def session_must_end(result: ExperimentResult) -> str | None:
    """Why no later experiment of the session can be trusted after this one, if so: the sealed
    evaluator's files or autolab's own code changed while it ran."""
    if result.flags.get("autolab_changed"):
        return result.flags["autolab_changed"]
    if result.flags.get("sealed_changed"):
        return result.reason
    return None
