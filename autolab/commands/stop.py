"""`autolab stop`: end the running research session cleanly, from another terminal."""

from rich.console import Console

from autolab.workspace import STOP_FILE, load_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stop",
        help="stop the research session running in a workspace",
        description="Ask the research session in the workspace to stop: the running experiment "
        "is ended and recorded as interrupted, and the session ends as cancelled.",
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    workspace = load_workspace(args.workspace)
    workspace.state_dir.mkdir(exist_ok=True)
    (workspace.state_dir / STOP_FILE).write_text("stop requested\n")
    Console().print(f"asked the session in {workspace.root} to stop")
    return 0
