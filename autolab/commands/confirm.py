"""`autolab confirm`: re-run the reference and the best of an ended research session, K times
each, and report the confirmed gain with its 95% interval (`research.confirm`)."""

import signal

from autolab.sandbox.availability import add_isolation_argument
from autolab.track.confirmation import DEFAULT_K
from autolab.views.progress import DEFAULT_INTERVAL


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "confirm",
        help="re-run the reference and the best K times each: does the gain hold?",
        description="Re-run the reference recipe (the baseline commit) and the best kept recipe "
        "of a research branch K times each with fresh seeds, interleaved, scored sealed as any "
        "experiment, and report the confirmed gain (mean best − mean reference, negative is "
        "better) with its 95% interval. `autolab research` does this at its end (--confirm).",
    )
    parser.add_argument(
        "--k", type=int, default=DEFAULT_K, metavar="K", help="runs of each recipe, at least 2"
    )
    parser.add_argument("--tag", help="branch autolab/<tag> (default: the latest session's)")
    add_isolation_argument(parser)
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from autolab.errors import UsageError
    from autolab.research.confirm import Options
    from autolab.sandbox.availability import isolation_from_args
    from autolab.track.ledger import Ledger, require_ledger
    from autolab.workspace import load_workspace

    if args.k < 2:
        raise UsageError("--k must be at least 2: an interval needs two runs of each recipe")
    workspace = load_workspace(args.workspace)
    require_ledger(workspace.root)
    with Ledger.for_workspace(workspace.root) as ledger:
        latest = ledger.latest_session()
        if latest is None:
            raise UsageError("no research session here yet: run `autolab research` first")
        tag = args.tag or latest.tag
        options = Options(tag=tag, k=args.k, isolation=isolation_from_args(args))
        status = confirm_branch(workspace, ledger, options, [], Console())
    return 0 if status in ("succeeded", "cancelled") else 1


def confirm_branch(workspace, ledger, options, listeners, console, interval=DEFAULT_INTERVAL):
    """Open a confirmation session (a UsageError when there is nothing to confirm), run it
    with its events printed as lines, and print the confirmed gain; returns its status. Ctrl-C
    and `autolab stop --now` interrupt the running run, which is recorded interrupted."""
    from autolab.commands.research import _run_plain
    from autolab.research.confirm import ConfirmSession
    from autolab.track.confirmation import confirmation_text
    from autolab.workspace import STOP_FILE

    (workspace.state_dir / STOP_FILE).unlink(missing_ok=True)
    session = ConfirmSession(workspace, ledger, options, listeners)
    session.start()

    def request_stop(signum, frame):
        session.stopping = session.interrupting = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = _run_plain(session, console, interval)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        (workspace.state_dir / STOP_FILE).unlink(missing_ok=True)
    console.print(
        f"confirm {status}: {confirmation_text(session.standings().confirmed)}", highlight=False
    )
    return status
