"""`autolab events`: the ledger's events as lines, optionally following a running session."""

import argparse
import sys
from pathlib import Path

from autolab.errors import UsageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "events",
        help="list a research session's events (steps, verdicts, alerts), or follow them",
        description="Print the events recorded in the workspace's ledger, one line each; with "
        "--follow, keep printing new ones until the latest session ends.",
    )
    parser.add_argument("-f", "--follow", action="store_true", help="wait for new events")
    parser.add_argument(
        "--experiment", type=int, metavar="N", help="only experiment N's events (default: all)"
    )
    parser.add_argument(
        "--last", type=int, default=20, metavar="N", help="start with the last N events"
    )
    parser.add_argument(
        "--researcher",
        metavar="NAME",
        help="only the events of experiments by NAME, e.g. manual (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from autolab.track.ledger import Ledger, require_ledger
    from autolab.views.events import event_json, event_text, follow
    from autolab.views.status import session_over, session_pid

    workspace = Path(args.workspace)
    require_ledger(workspace)
    if args.last < 0:
        raise UsageError("--last must be 0 or more")
    console = Console(highlight=False, soft_wrap=True)

    def show(event) -> None:
        if args.json:
            sys.stdout.write(event_json(event) + "\n")
            sys.stdout.flush()
        else:
            console.print(event_text(event))

    with Ledger.for_workspace(workspace) as ledger:
        if args.experiment is not None and ledger.experiment(args.experiment) is None:
            raise UsageError(
                f"no experiment {args.experiment} in the ledger: see `autolab results`"
            )
        before = ledger.events(last=1)  # where following starts when nothing else is shown
        events = ledger.events(number=args.experiment, last=args.last) if args.last else []
        if args.researcher and args.last:
            from autolab.commands.results import by_researcher

            numbers = {v.number for v in by_researcher(ledger.experiments(), args.researcher)}
            events = [e for e in ledger.events(number=args.experiment) if e.number in numbers]
            events = events[-args.last :]
        for event in events:
            show(event)
        if not args.follow:
            return 0
        session = ledger.latest_session()
        if session is None:
            return 0
        pid = session_pid(ledger, session)
        if session_over(ledger, session.id, pid):
            return 0
        after_id = max([e.id for e in before + events], default=0)
        for event in follow(
            ledger,
            after_id,
            lambda: session_over(ledger, session.id, pid),
            number=args.experiment,
            session_id=session.id,
        ):
            show(event)
    return 0
