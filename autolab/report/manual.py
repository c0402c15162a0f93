"""The report's part on the person's own `autolab train` runs, beside a session's or alone: each
run with its verdict, score and Δ against the person's best before it (`manual_standings`), the
chart's trace of them (`ManualTrace`) and, with no research session, the report's facts."""

import html
import time
from dataclasses import dataclass, field

from autolab.manual.verdict import REPEAT_HINT
from autolab.research.policy import Noise, Policy
from autolab.track.ledger import FAILED_STATUSES, ExperimentView, Ledger
from autolab.track.standings import (
    MANUAL,
    Standings,
    manual_noise,
    manual_standings,
    manual_views,
)

HEADER = ("#", "kind", "verdict", "val_bpb", "vs your best before", "description")
TITLE = "Your runs (autolab train)"


@dataclass
class ManualTrace:
    """What the progress chart draws of the person's runs: their views, standings and the noise
    band the latest `--repeat` measured (None before one)."""

    views: list[ExperimentView] = field(default_factory=list)
    standings: Standings | None = None
    band: float | None = None
    band_from: int | None = None  # the experiment whose --repeat measured the band


def manual_trace(ledger: Ledger) -> ManualTrace:
    views = manual_views(ledger)
    if not views:
        return ManualTrace()
    noise = manual_noise(ledger)
    band = (
        None
        if noise is None
        else Policy().band(Noise(noise[0].baseline_bpb, noise[0].spread, noise[0].runs))
    )
    return ManualTrace(views, manual_standings(ledger), band,
                       None if noise is None else noise[1])  # fmt: skip


def manual_facts(trace: ManualTrace) -> list[tuple[str, str]]:
    """The report's setup and outcome rows when the person's runs are all there is."""
    st = trace.standings
    runs = [v for v in trace.views if v.kind == MANUAL]
    repeats = len(trace.views) - len(runs)
    failed = sum(1 for v in runs if v.status in FAILED_STATUSES)
    kept = sum(1 for v in runs if v.status == "keep")
    first = trace.views[0]
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.created))
    best = "-"
    if st.best_number is not None:
        what = " ".join(st.best_description.split())
        best = f"{st.best_score:.4f} (exp {st.best_number}: {what})"
        first_scored = next((r for r in st.rows if r.kind == MANUAL and r.score is not None), None)
        if first_scored and first_scored.number != st.best_number:
            best += f", {st.best_score - first_scored.score:+.4f} vs your first run"
    if trace.band is None:
        band = f"unknown: {REPEAT_HINT}"
    else:
        band = f"{trace.band:.4f} (from the --repeat runs of exp {trace.band_from})"
    hardware = ", ".join(sorted({v.hardware for v in trace.views if v.hardware})) or "-"
    return [
        ("researcher", "you (autolab train); no research session yet"),
        ("first run", started),
        ("hardware", hardware),
        (
            "runs",
            f"{len(runs)} train.py runs: {kept} new best, {len(runs) - kept - failed} not "
            f"better, {failed} failed" + (f" (plus {repeats} --repeat runs)" if repeats else ""),
        ),  # fmt: skip
        ("best val_bpb", best),
        ("noise band", band),
    ]


def manual_rows(ledger: Ledger) -> list[tuple[str, ...]]:
    st = manual_standings(ledger)
    rows = []
    for v in manual_views(ledger):
        r = st.row(v.number)
        star = " ★" if r and r.is_best else ""
        what = f"repeat of #{v.rechecks}" if v.kind == "recheck" else v.kind
        score = f"{r.score:.4f}" if r and r.score is not None else ""
        delta = r.delta_best_before if r else None
        rows.append((str(v.number), what, v.status + star, score,
                     "" if delta is None else f"{delta:+.4f}",
                     " ".join(v.description.split())))  # fmt: skip
    return rows


def markdown(rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["", f"## {TITLE}", "", "| " + " | ".join(HEADER) + " |"]
    lines.append("|" + "|".join("---:" if i in (0, 3, 4) else "---" for i in range(6)) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def html_parts(rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    e = html.escape
    parts = [f"<h2>{TITLE}</h2>", "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADER)]
    for row in rows:
        cells = "".join(f'<td class="n">{e(c)}</td>' if i in (0, 3, 4) else f"<td>{e(c)}</td>"
                        for i, c in enumerate(row))  # fmt: skip
        parts.append(f"<tr>{cells}</tr>")
    return parts + ["</table>"]
