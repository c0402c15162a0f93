"""The live terminal view of a research session (rich)."""

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from autolab.commands.results import results_table
from autolab.track.standings import Standings

RECENT_ROWS = 12


def render(session) -> Panel:
    """The running experiment, the recent results and the best so far, from the session."""
    head = Table.grid(padding=(0, 2))
    head.add_column()
    head.add_column()
    # With --workers N, every experiment in flight (research.parallel keeps `lives`).
    lives = list(getattr(session, "lives", {}).values()) or [session.live]
    for live in lives:
        if live.number is None:
            head.add_row(Text(live.phase, style="bold"), Text(live.description))
            continue
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
    standings = session.standings()
    views = session.ledger.experiments(session_ids=standings.session_ids)
    standing = Text(standings_text(standings))
    done = sum(1 for v in views if v.status != "running")
    standing.append(f"   {done} experiments done")
    rows = {r.number: r for r in standings.rows}
    return Panel(
        Group(head, Text(), results_table(views[-RECENT_ROWS:], rows), standing),
        title=f"autolab research · {session.branch} · {session.researcher.name}",
        border_style="blue",
    )


def standings_text(st: Standings) -> str:
    """ "reference 2.9169 ± 0.0030   best 2.9000 (Δ -0.0169, exp 7)": the live view's and the
    research command's last line."""
    ref = st.reference
    if ref is None:
        return "measuring the reference (baseline runs)"
    text = f"reference {ref.bpb:.4f} ± {ref.spread:.4f}"
    if st.best_number is None:
        return text + "   best = reference (nothing kept yet)"
    return text + f"   best {st.best_score:.4f} (Δ {st.delta:+.4f}, exp {st.best_number})"
