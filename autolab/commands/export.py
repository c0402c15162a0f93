"""`autolab export`: send a ledger that already exists to W&B, MLflow or TensorBoard.

The same exporters as `autolab research --wandb/--mlflow/--tensorboard`, fed from the ledger
after the fact: every experiment of the chosen sessions with its curves, config, sealed score,
verdict, diff and samples from its handed-over model. Each export makes new tracker runs.
"""

from autolab.errors import UsageError

DEFAULT_SAMPLES = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="send research sessions from the ledger to W&B, MLflow or TensorBoard",
        description="Send the experiments of a research session (default: the latest) to one "
        "or more trackers: curves, config, sealed val_bpb, verdict, train.py diff and samples.",
    )
    from autolab.exporters import add_tracker_flags

    add_tracker_flags(parser.add_argument_group("trackers (at least one)"))
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--session", type=int, metavar="N", help="the session to send (default: the latest)"
    )
    which.add_argument("--all", action="store_true", help="send every session")
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help="samples from each experiment's model (0: none, faster)",
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from autolab.exporters import export_ledger, exporters_from_flags
    from autolab.track.ledger import Ledger, require_ledger
    from autolab.workspace import load_workspace

    if not (args.wandb or args.mlflow or args.tensorboard):
        raise UsageError("say where to send it: --wandb, --mlflow URI or --tensorboard DIR")
    if args.samples < 0:
        raise UsageError("--samples must be 0 or more")
    workspace = load_workspace(args.workspace)
    require_ledger(workspace.root)
    exporters = exporters_from_flags(args)
    with Ledger.for_workspace(workspace.root) as ledger:
        sessions = choose_sessions(ledger.sessions(), args.session, args.all)
        samples = sampler(workspace, args.samples)
        count = export_ledger(
            ledger,
            workspace.root,
            workspace.state_dir,
            exporters,
            sessions,
            samples=samples,
            progress=lambda view: print(f"exp {view.number}: {view.description}", flush=True),
        )
    names = ", ".join(f"{s.id} ({s.tag})" for s in sessions)
    targets = ", ".join(repr(e) for e in exporters)
    print(f"sent {count} experiments of session {names} to {targets}")
    return 0


def choose_sessions(sessions: list, number: int | None, every: bool) -> list:
    if not sessions:
        raise UsageError("the ledger has no research session yet: run `autolab research` first")
    if every:
        return sessions
    if number is None:
        return sessions[-1:]
    chosen = [s for s in sessions if s.id == number]
    if not chosen:
        known = ", ".join(str(s.id) for s in sessions)
        raise UsageError(f"no session {number} in the ledger (sessions: {known})")
    return chosen


def sampler(workspace, count: int):
    """samples(view): `count` texts from the experiment's model, [] where it left none."""
    if count == 0:
        return lambda view: []
    from autolab.sampling import sample_texts
    from autolab.workspace import prepare_data

    data_dir = prepare_data(workspace).data_dir

    def samples(view) -> list[str]:
        run_dir = workspace.runs_dir / str(view.number)
        try:
            return sample_texts(run_dir, data_dir, count)
        except UsageError as err:  # a damaged model: the rest of the export goes on
            print(f"exp {view.number}: no samples ({err})", flush=True)
            return []

    return samples
