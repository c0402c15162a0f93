"""`autolab stop`: end the running research session, from another terminal."""

from autolab.errors import UsageError
from autolab.stop_request import AFTER, NOW, request_stop, running_session
from autolab.workspace import load_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stop",
        help="stop the research session running in a workspace",
        description="Ask the research session in the workspace to stop: it lets the running "
        "experiment finish and records it, then ends (cancelled). With --now the running "
        "experiment is interrupted instead; `autolab research --resume` runs it again first.",
    )
    parser.add_argument(
        "--now",
        action="store_true",
        help="interrupt the running experiment (default: let it finish and be recorded)",
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR", help="(default: .)")
    parser.set_defaults(func=run)


def run(args) -> int:
    workspace = load_workspace(args.workspace)
    session = running_session(workspace.root)
    if session is None:
        raise UsageError(f"no research session is running in {workspace.root}: nothing to stop")
    when = NOW if args.now else AFTER
    request_stop(workspace.state_dir, when, "autolab stop")
    what = (
        "interrupt the running experiment and stop"
        if when == NOW
        else "stop once the running experiment is recorded (`autolab stop --now` interrupts it)"
    )
    print(f"asked session {session.id} ({session.tag}) in {workspace.root} to {what}")
    return 0
