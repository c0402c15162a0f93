"""`autolab dashboard`: the workspace's ledger live in a browser (charts, table, diffs, Stop)."""

from rich.console import Console

from autolab.errors import UsageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve a live web dashboard of a workspace's research",
        description="Serve a web page that follows the workspace's ledger live: the progress "
        "chart, the running experiment's training curve, the experiment table, each "
        "experiment's diff, log and samples, and a Stop button. It may be started before "
        "`autolab research`: it fills in once the ledger appears.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: local)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any)")
    parser.add_argument(
        "--token",
        help="required on every request (default: none on a local address, generated on any other)",
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        from autolab.dashboard.app import make_server, plotly_js, resolve_token, url
    except ModuleNotFoundError as err:
        raise UsageError(
            f"the dashboard needs {err.name}: pip install 'autolab[dashboard]'"
        ) from None
    from autolab.workspace import load_workspace

    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    workspace = load_workspace(args.workspace)
    token = resolve_token(args.host, args.token)
    server, sock = make_server(workspace, args.host, args.port, token)
    port = sock.getsockname()[1]
    console = Console()
    console.print(f"autolab dashboard of {workspace.root}", highlight=False)
    if plotly_js() is None:
        console.print("[yellow]plotly is not installed: charts are off[/]")
    console.print(f"open [bold]{url(args.host, port, token)}[/]  (Ctrl-C ends it)", highlight=False)
    server.run(sockets=[sock])
    return 0
