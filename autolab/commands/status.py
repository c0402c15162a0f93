"""`autolab status`: the latest research session, the way a hosted training job is shown."""

import argparse
import json
import sys
import time
from pathlib import Path

from autolab.errors import UsageError

STATE_STYLES = {  # one per track.standings.SESSION_STATES
    "queued": "yellow",
    "running": "bold blue",
    "stopping": "bold yellow",
    "succeeded": "bold green",
    "failed": "bold red",
    "cancelled": "bold yellow",
    "killed": "bold red",
}


ISOLATION_LINES = {
    "sandbox": "sandbox: each experiment in its own namespaces, out of the referee's reach",
    "process": "process: no sandbox, the checks catch a cheat but not a hostile program "
    "(docs/security.md)",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the state of the latest research session",
        description="Show the latest research session as a job (queued, running, stopping, "
        "succeeded, failed, cancelled or killed), the running experiment, the time left, and "
        "its branch's standing across every session --resume continued: reference, best, Δ "
        "and counts. Exits 3 when the ledger was changed outside autolab.",
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from autolab.track.ledger import Ledger, require_ledger
    from autolab.views.integrity import TAMPERED_EXIT, chain_warnings, disagreements
    from autolab.views.status import session_status
    from autolab.workspace import STATE_DIR, STOP_FILE

    workspace = Path(args.workspace)
    require_ledger(workspace)
    stop_requested = (workspace / STATE_DIR / STOP_FILE).exists()
    with Ledger.for_workspace(workspace) as ledger:
        status = session_status(ledger, stop_requested=stop_requested)
        manual = manual_summary(ledger)
        warnings = chain_warnings(ledger)
        code = TAMPERED_EXIT if warnings else 0
        warnings += disagreements(ledger, workspace.resolve())
    if status is None and manual is None:
        raise UsageError(
            f"no research session in {workspace.resolve()} yet: run `autolab research`"
        )
    if args.json:
        shown = status.to_dict() if status else {}
        if manual is not None:
            shown["manual"] = manual["json"]
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
    else:
        if status is not None:
            Console(highlight=False).print(render_status(status))
        if manual is not None:
            Console(highlight=False, soft_wrap=True).print(manual["line"])
    for line in warnings:
        Console(stderr=True).print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False,
                                   soft_wrap=True)  # fmt: skip
    return code


def manual_summary(ledger) -> dict | None:
    """The person's `autolab train` runs beside the session: their best and noise band, as
    `autolab results` tells them; None when there are none."""
    from dataclasses import asdict

    from autolab.commands.results import manual_line
    from autolab.track.standings import band, manual_noise, manual_standings

    st = manual_standings(ledger)
    if not st.rows:
        return None
    noise = manual_noise(ledger)
    measured = None
    if noise is not None:
        measured = {**asdict(noise[0]), "band": band(noise[0], {}), "number": noise[1]}
    return {
        "line": manual_line(st, noise),
        "json": {
            "best_number": st.best_number,
            "best_bpb": st.best_score,
            "best_description": st.best_description,
            "counts": {**vars(st.counts), "failed": st.counts.failed},
            "noise": measured,
            "numbers": [r.number for r in st.rows],
        },
    }


def noise_line(status) -> str:
    """The spread with its 95% interval and where it comes from: 'spread 0.0040 (95%
    0.0025-0.0098 from 5 degrees of freedom, pooled over 3 sessions)'."""
    line = f"spread {status.noise_spread:.4f}"
    if status.noise_interval is None:
        return line + " (one run: no estimate of the noise)"
    low, high = status.noise_interval
    sessions = status.noise_pooled_sessions or 1
    pooled = f", pooled over {sessions} sessions" if sessions > 1 else ", this session alone"
    return (f"{line} (95% {low:.4f}-{high:.4f} from {status.noise_dof} degree"
            f"{'s' if status.noise_dof != 1 else ''} of freedom{pooled})")  # fmt: skip


def render_status(status):
    """A panel: state line, time, running experiment, counts, baseline and best."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    from autolab.hardware import label as fingerprint_label
    from autolab.views.status import counts_line, format_seconds, runs_line

    style = STATE_STYLES.get(status.state, "")
    head = Text()
    head.append(status.state, style=style)
    if status.reason:
        head.append(f"  {status.reason}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("state", head)
    timing = f"started {time.strftime('%Y-%m-%d %H:%M', time.localtime(status.started))}"
    timing += f", {format_seconds(status.elapsed_seconds)} elapsed"
    if status.remaining_seconds is not None:
        timing += f", about {format_seconds(status.remaining_seconds)} left"
    grid.add_row("time", timing)
    isolation = status.config.get("isolation")
    if isolation:
        grid.add_row("isolation", ISOLATION_LINES.get(isolation, isolation))
    for hardware in status.hardware_fingerprints:  # more than one: scores differ by machine too
        grid.add_row("hardware", fingerprint_label(hardware))
    for run in status.in_flight or ([status.running] if status.running else []):
        line = Text(f"exp {run.number}  ", style="bold blue")
        line.append(" ".join(run.description.split()), style="")
        grid.add_row("running", line)
        progress = Table.grid(padding=(0, 2))
        detail = f"{100 * (run.progress or 0):3.0f}%"
        if run.step is not None:
            detail += f"  step {run.step}"
        if run.loss is not None:
            detail += f"  loss {run.loss:.4f}"
        progress.add_row(ProgressBar(total=1.0, completed=run.progress or 0, width=30), detail)
        grid.add_row("", progress)
    if len(status.session_ids) > 1:
        grid.add_row(
            "sessions",
            f"{', '.join(map(str, status.session_ids))} on this branch "
            "(continued with --resume): the numbers below cover them all",
        )
    grid.add_row("experiments", f"{counts_line(status.counts)}  ({runs_line(status.counts)})")
    # With runs on more than one fingerprint, each has its own reference: say which this is.
    measured_on = ""
    if status.reference_hardware and len(status.hardware_fingerprints) > 1:
        measured_on = f" on {fingerprint_label(status.reference_hardware)}"
    if status.reference_bpb is not None:
        grid.add_row(
            "reference",
            f"{status.reference_bpb:.4f} ± {status.noise_spread:.4f} "
            f"(mean of the baseline runs{measured_on}; keep band {status.band:.4f})",
        )
        grid.add_row("noise", noise_line(status))
    if status.best_number is not None:
        best = Text(f"{status.best_bpb:.4f}", style="bold green")
        best.append(f"  (Δ {status.delta:+.4f} vs reference)  exp {status.best_number}: ")
        best.append(" ".join(status.best_description.split()), style="")
        grid.add_row("best", best)
    elif status.reference_bpb is not None:
        kept = f"no change kept yet{' on it' if measured_on else ''}"
        grid.add_row("best", f"the reference: {kept}")
    if status.best_number is not None:
        from autolab.track.confirmation import confirmation_text

        grid.add_row("confirmed", confirmation_text(status.confirmed))
    title = f"autolab session {status.session_id} · {status.branch} · {status.researcher}"
    return Panel(Group(grid), title=title, border_style=style.split()[-1] if style else "")
