"""The report's section on the person's own `autolab train` runs, beside the session's: each
run with its verdict, score and Δ against the person's best before it (`manual_standings`)."""

import html

from autolab.track.ledger import Ledger
from autolab.track.standings import manual_standings, manual_views

HEADER = ("#", "kind", "verdict", "val_bpb", "vs your best before", "description")
TITLE = "Your runs (autolab train)"


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
