"""Which run to inspect: `N`, `best`, `baseline`, `last` or a run directory -> its run dir;
and loading its model with the tokenizer it was trained with.

Experiments of the research loop live in `<ws>/.autolab/runs/<N>/`; `autolab train` runs in
`<ws>/.autolab/runs/train-*/`, the latest named by `<ws>/.autolab/last_run`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolab.errors import UsageError
from autolab.harness.files import MODEL_FILE
from autolab.track.ledger import ExperimentView, Ledger, ledger_path
from autolab.workspace import Workspace, last_run_dir

SELECTORS = "N (an experiment number), best, baseline, last or a run directory"


@dataclass
class SelectedRun:
    run_dir: Path
    label: str  # for titles: "exp 4 (best, 1.9312 bpb)", "last run train-20261123-105256"


@dataclass
class LoadedRun:
    run: SelectedRun
    model: Any  # the exported program's module: (B, T) ids -> (B, T, V) logits
    info: dict  # model.json: context_len, vocab_size
    tokenizer: Any
    meta: dict  # the prepared data's meta.json (its separator)


def default_selector(workspace: Workspace) -> str:
    """`best` once the latest branch has a reference (its baseline runs), else the last
    `autolab train` run."""
    if ledger_path(workspace.root).is_file():
        with Ledger.for_workspace(workspace.root) as ledger:
            if ledger.standings().best_score is not None:
                return "best"
    return "last"


def select_run(workspace: Workspace, selector: str | None = None) -> SelectedRun:
    """The run `selector` names, with a model in it; a UsageError saying what to do otherwise."""
    selector = (selector or default_selector(workspace)).strip()
    if selector == "last":
        run_dir = last_run_dir(workspace)
        return _with_model(SelectedRun(run_dir, f"last run {run_dir.name}"))
    if selector.isdigit() or selector in ("best", "baseline"):
        return _with_model(_from_ledger(workspace, selector))
    if Path(selector).is_dir():
        run_dir = Path(selector).resolve()
        return _with_model(SelectedRun(run_dir, f"run {run_dir.name}"))
    raise UsageError(f"unknown experiment {selector!r}: use {SELECTORS}")


def _from_ledger(workspace: Workspace, selector: str) -> SelectedRun:
    if not ledger_path(workspace.root).is_file():
        raise UsageError(
            f"no ledger in {workspace.root} (no research session yet): "
            "use --experiment last for the `autolab train` run, or run `autolab research`"
        )
    with Ledger.for_workspace(workspace.root) as ledger:
        standings = ledger.standings()
        branch = ledger.experiments(session_ids=standings.session_ids)
        if selector == "best" and standings.best_number is not None:
            view, what = ledger.experiment(standings.best_number), "best"
        elif selector in ("best", "baseline"):
            # Nothing kept: the best is the reference, whose model is the latest baseline run.
            view = _latest_baseline(branch)
            what = "baseline" if selector == "baseline" else "best = baseline, nothing kept"
            if view is None:
                raise UsageError("no baseline in the ledger yet: run `autolab research` first")
        else:
            view, what = ledger.experiment(int(selector)), ""
            if view is None:
                last = ledger.next_number() - 1
                known = f"experiments are 1 to {last}" if last else "the ledger has none yet"
                raise UsageError(f"no experiment {selector} in the ledger ({known})")
    row = standings.row(view.number)
    score = f", {row.score:.4f} bpb" if row is not None and row.score is not None else ""
    status = what or view.status
    label = f"exp {view.number} ({status}{score})"
    run_dir = workspace.runs_dir / str(view.number)
    if not (run_dir / MODEL_FILE).is_file():
        reason = f": {view.reason}" if view.reason else ""
        raise UsageError(
            f"experiment {view.number} ({view.status}{reason}) left no model in {run_dir}; "
            "pick another with --experiment, or run `autolab train` and use --experiment last"
        )
    return SelectedRun(run_dir, label)


def _latest_baseline(views: list[ExperimentView]) -> ExperimentView | None:
    """The most recent baseline that was kept (the latest session's starting recipe)."""
    baselines = [v for v in views if v.kind == "baseline" and v.status == "keep"]
    return baselines[-1] if baselines else None


def _with_model(selected: SelectedRun) -> SelectedRun:
    if not (selected.run_dir / MODEL_FILE).is_file():
        raise UsageError(
            f"no model in {selected.run_dir}: the run did not finish; "
            "run `autolab train` to train one"
        )
    return selected


def load_selected(selected: SelectedRun, data_dir: Path) -> LoadedRun:
    """The run's model on the CPU with the workspace's tokenizer; a UsageError when the
    vocabulary changed since it was trained (its ids would mean other tokens)."""
    from autolab.sampling import load_run  # torch: only once a model is wanted

    model, info, tokenizer, meta = load_run(selected.run_dir, data_dir)
    if int(info["vocab_size"]) != tokenizer.vocab_size:
        raise UsageError(
            f"{selected.label} was trained on another vocabulary ({info['vocab_size']} tokens, "
            f"the workspace's data has {tokenizer.vocab_size}): autolab.toml changed since"
        )
    return LoadedRun(selected, model, info, tokenizer, meta)


def same_model(selectors: list[str], runs: list[SelectedRun]) -> str | None:
    """Why two selected runs are one model (a one-line refusal for --compare), or None."""
    if len(runs) != 2 or runs[0].run_dir != runs[1].run_dir:
        return None
    if set(selectors) == {"best", "baseline"}:
        return (
            "best and baseline are the same model: nothing was kept on this branch, so the best "
            "is the reference; compare the baseline with an experiment number instead"
        )
    return f"{selectors[0]} and {selectors[1]} are the same run ({runs[0].label})"
