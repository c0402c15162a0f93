"""The live terminal view of a research session (rich)."""

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from autolab.commands.results import results_table

RECENT_ROWS = 12


def render(session) -> Panel:
    """The running experiment, the recent results and the best so far, from the session."""
    live = session.live
    head = Table.grid(padding=(0, 2))
    head.add_column()
    head.add_column()
    if live.number is not None:
        loss = f"loss {live.loss:.4f}" if live.loss is not None else "loss -"
        head.add_row(
            Text(f"exp {live.number}  {live.phase}", style="bold blue"),
            Text(live.description, overflow="ellipsis", no_wrap=True),
        )
        head.add_row(
            ProgressBar(total=1.0, completed=live.progress, width=30),
            f"{100 * live.progress:3.0f}%  step {live.step}  {loss}  "
            f"{live.tokens_per_sec / 1000:.1f}k tok/s",
        )
    else:
        head.add_row(Text(live.phase, style="bold"), Text(live.description))
    views = session.ledger.experiments(session.session_id) if session.session_id else []
    standing = Text()
    if session.noise:
        standing.append(f"baseline {session.noise.baseline_bpb:.4f} ± {session.noise.spread:.4f}")
    if session.best_bpb is not None and session.noise:
        gain = session.noise.baseline_bpb - session.best_bpb
        standing.append(f"   best {session.best_bpb:.4f}", style="bold green")
        standing.append(f"  ({gain:+.4f} vs baseline)")
    done = sum(1 for v in views if v.status != "running")
    standing.append(f"   {done} experiments done")
    return Panel(
        Group(head, Text(), results_table(views[-RECENT_ROWS:]), standing),
        title=f"autolab research · {session.branch} · {session.researcher.name}",
        border_style="blue",
    )
