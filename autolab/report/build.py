"""The session report: progress.png, report.md and a self-contained report.html.

Everything comes from the ledger, git and the best run's exported model. It leads with the
confirmed gain (`track.confirmation`: the best and the reference re-run side by side), then the
branch's standings (`track.standings`: reference, best, Δ, counts) across every session
`--resume` (or `autolab confirm`) continued,
every experiment tried with its verdict and Δ, each kept change, the cumulative diff of train.py
from the branch's base commit to the best commit, samples from the best model, the setup and
the LLM spend. The person's own `autolab train` runs (`report.manual`) have their table and
their trace on the chart beside the session's; with no research session they are the report.
report.html embeds the chart as base64 and its CSS inline; it loads nothing from anywhere.
"""

import base64
import html
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from autolab import gitrepo
from autolab.durations import format_duration
from autolab.errors import UsageError
from autolab.report import manual
from autolab.report.chart import progress_chart
from autolab.report.manual import ManualTrace
from autolab.track.confirmation import confirmation_text
from autolab.track.ledger import ExperimentView, Ledger, SessionView
from autolab.track.standings import IMPROVING_KINDS, Standings, read_standings
from autolab.views.status import (
    SessionStatus,
    counts_line,
    format_seconds,
    plural,
    runs_line,
    session_status,
)
from autolab.workspace import STATE_DIR, TRAIN_FILE

CHART_FILE = "progress.png"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


@dataclass
class KeptChange:
    number: int
    description: str
    score: float
    delta_best_before: float  # score - the best before it: negative is better
    delta: float  # score - the reference


@dataclass
class ReportData:
    workspace: Path
    session: SessionView | None  # None: no research session, the person's runs are the report
    status: SessionStatus | None
    standings: Standings
    views: list[ExperimentView]  # the branch's, every session
    kept: list[KeptChange]
    best: ExperimentView | None
    diff: str
    diff_note: str
    samples: list[str]
    samples_note: str
    counts: dict[str, int] = field(default_factory=dict)
    llm_tokens: tuple[int, int] = (0, 0)  # prompt, completion
    llm_cost_usd: float = 0.0
    manual: list[tuple[str, ...]] = field(default_factory=list)  # the person's runs: manual.py
    trace: ManualTrace = field(default_factory=ManualTrace)  # ...and their trace on the chart


def build_report(
    workspace: str | Path, out_dir: str | Path | None = None, num_samples: int = 5
) -> dict[str, Path]:
    """Write the latest session's report; returns {"png", "md", "html"} paths."""
    root = Path(workspace).resolve()
    with Ledger.for_workspace(root) as ledger:
        data = collect(root, ledger, num_samples)
    out = Path(out_dir) if out_dir else root / STATE_DIR / "report"
    out.mkdir(parents=True, exist_ok=True)
    png = _replace_into(out / CHART_FILE, lambda tmp: progress_chart(
        data.views, data.standings, tmp, data.trace))  # fmt: skip
    md = _replace_into(out / MARKDOWN_FILE, lambda tmp: tmp.write_text(render_markdown(data)))
    page = render_html(data, png.read_bytes())
    html_path = _replace_into(out / HTML_FILE, lambda tmp: tmp.write_text(page))
    return {"png": png, "md": md, "html": html_path}


def _replace_into(path: Path, write) -> Path:
    """Write through a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def collect(root: Path, ledger: Ledger, num_samples: int = 5) -> ReportData:
    session = ledger.latest_session()
    if session is None:
        return collect_manual(root, ledger, num_samples)
    status = session_status(ledger, session)
    standings = read_standings(ledger, session.tag)
    views = ledger.experiments(session_ids=standings.session_ids)
    best = best_view(views, standings)
    diff, diff_note = _diff(root, session.config.get("base_commit"), best)
    samples, samples_note = _samples(root, best, num_samples)
    counts = standings.counts.by_status()
    candidates = [v for v in views if v.kind == "candidate"]
    return ReportData(
        workspace=root,
        session=session,
        status=status,
        standings=standings,
        views=views,
        kept=kept_changes(standings, views),
        best=best,
        diff=diff,
        diff_note=diff_note,
        samples=samples,
        samples_note=samples_note,
        counts=counts,
        llm_tokens=(
            sum(v.llm_prompt_tokens or 0 for v in candidates),
            sum(v.llm_completion_tokens or 0 for v in candidates),
        ),
        llm_cost_usd=sum(v.llm_cost_usd or 0.0 for v in candidates),
        manual=manual.manual_rows(ledger),
        trace=manual.manual_trace(ledger),
    )


def collect_manual(root: Path, ledger: Ledger, num_samples: int = 5) -> ReportData:
    """The report of the person's `autolab train` runs when no research session exists: their
    table, chart, best, noise band, the diff of train.py from their first run to their best."""
    trace = manual.manual_trace(ledger)
    if not trace.views:
        raise UsageError(f"nothing to report in {root} yet: run `autolab train` or "
                         "`autolab research` first")  # fmt: skip
    st = trace.standings
    best = next((v for v in trace.views if v.number == st.best_number), None)
    first = trace.views[0]
    if best is None:
        diff, diff_note = "", "no run of yours has a score yet"
    elif best.number == first.number:
        diff, diff_note = "", f"your best is your first run (exp {best.number}): no diff"
    else:
        diff, diff_note = _diff(root, first.commit_sha, best, f"your first run, exp {first.number}")
    samples, samples_note = _samples(root, best, num_samples)
    return ReportData(
        workspace=root,
        session=None,
        status=None,
        standings=st,
        views=[],
        kept=[],
        best=best,
        diff=diff,
        diff_note=diff_note,
        samples=samples,
        samples_note=samples_note,
        counts=st.counts.by_status(),
        manual=manual.manual_rows(ledger),
        trace=trace,
    )


def best_view(views: list[ExperimentView], standings: Standings) -> ExperimentView | None:
    """The best's run: the best kept candidate, else the latest baseline run (whose model
    stands for the reference)."""
    if standings.best_number is not None:
        return next(v for v in views if v.number == standings.best_number)
    baselines = [v for v in views if v.kind == "baseline" and v.status == "keep"]
    return baselines[-1] if baselines and standings.reference else None


def kept_changes(standings: Standings, views: list[ExperimentView]) -> list[KeptChange]:
    """Kept candidates in order, each with its Δ against the best before it and the reference."""
    descriptions = {v.number: v.description for v in views}
    return [
        KeptChange(
            r.number, descriptions[r.number], r.score, r.delta_best_before, r.delta
        )  # fmt: skip
        for r in standings.rows
        if r.kind == "candidate"
        and r.status == "keep"
        and r.score is not None
        and r.delta is not None
        and r.delta_best_before is not None
    ]


def _diff(
    root: Path, base: str | None, best: ExperimentView | None, base_label: str = "session start"
) -> tuple[str, str]:
    if not base:
        return "", "the session recorded no base commit"
    if best is None or best.kind not in IMPROVING_KINDS:
        return "", "no change was kept: train.py is as the session found it"
    try:
        diff = gitrepo.git(root, "diff", base, best.commit_sha, "--", TRAIN_FILE)
    except gitrepo.GitError as err:
        return "", f"git could not diff {base[:7]}..{best.commit_sha[:7]}: {err}"
    span = f"{base[:7]} ({base_label}) to {best.commit_sha[:7]} (exp {best.number})"
    return diff, f"{TRAIN_FILE} from {span}"


def _samples(root: Path, best: ExperimentView | None, n: int) -> tuple[list[str], str]:
    if best is None or n <= 0:
        return [], "no samples asked for" if n <= 0 else "no scored model yet"
    run_dir = root / STATE_DIR / "runs" / str(best.number)
    from autolab.sampling import sample_texts
    from autolab.workspace import load_workspace, prepare_data

    try:
        data_dir = prepare_data(load_workspace(root)).data_dir
    except UsageError as err:  # e.g. a download that is not possible offline
        return [], f"the workspace's data is not available: {err}"
    texts = sample_texts(run_dir, data_dir, n)
    if not texts:
        return [], f"exp {best.number} left no exported model in {run_dir}"
    return texts, f"{len(texts)} samples from exp {best.number} (temperature 1.0)"


# --- rendering ----------------------------------------------------------------------------------


def _bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def facts(data: ReportData) -> list[tuple[str, str]]:
    """The setup and the outcome as (label, value) rows, shared by both renderings."""
    if data.session is None:
        return manual.manual_facts(data.trace)
    s, st = data.session, data.status
    counts = counts_line(data.standings.counts)
    ref = data.standings.reference
    ids = data.standings.session_ids
    rows = [
        ("session", f"{s.id} on {s.branch} ({st.state}{': ' + st.reason if st.reason else ''})"),
        (
            "sessions",
            ", ".join(map(str, ids))
            + (" (continued with --resume; this report covers them all)" if len(ids) > 1 else ""),
        ),
        ("started", time.strftime("%Y-%m-%d %H:%M", time.localtime(s.started))),
        ("duration", format_seconds(st.elapsed_seconds)),
        ("researcher", s.researcher),
        ("hardware", _hardware(data)),
        (
            "budget",
            format_duration(s.budget_seconds) + " of training per experiment"
            if s.budget_seconds
            else "-",
        ),  # fmt: skip
        ("experiments", f"{counts} (plus {runs_line(data.standings.counts)})"),
        (
            "reference val_bpb",
            f"{ref.bpb:.4f} ± {ref.spread:.4f} (mean of {ref.runs} baseline runs; keep band "
            f"{ref.band:.4f})"
            if ref is not None
            else "-",
        ),  # fmt: skip
        ("best val_bpb", _best_line(data)),
        (
            "confirmed",
            confirmation_text(data.standings.confirmed)
            if data.standings.best_number is not None
            else "-",
        ),
    ]
    prompt, completion = data.llm_tokens
    if prompt or completion or data.llm_cost_usd:
        rows.append(("LLM tokens", f"{prompt:,} prompt + {completion:,} completion, "
                                   f"${data.llm_cost_usd:.2f}"))  # fmt: skip
    else:
        rows.append(("LLM tokens", "none"))
    return rows


def _hardware(data: ReportData) -> str:
    """The runs' fingerprints (autolab.hardware.label; one reference each), else what they
    reported (e.g. "cpu (2 threads)"), else the session's device."""
    from autolab.hardware import distinct, label

    fingerprints = [label(h) for h in distinct(v.flags.get("hardware") for v in data.views)]
    reported = sorted({v.hardware for v in data.views if v.hardware})
    return "; ".join(fingerprints) or ", ".join(reported) or data.session.hardware or "-"


def _best_line(data: ReportData) -> str:
    st = data.standings
    if st.best_score is None:
        return "-"
    if st.best_number is None:
        return f"{st.best_score:.4f}: the reference, no change was kept"
    return f"{st.best_score:.4f} (exp {st.best_number}, Δ {st.delta:+.4f} vs reference)"


def headline(data: ReportData) -> str:
    """The report's first line: the confirmed gain beside the in-session one, when there is a
    best to confirm; else what the session found."""
    st = data.standings
    if data.session is None:
        if st.best_number is None:
            return "None of your runs has a score yet."
        runs = plural(sum(v.kind == "manual" for v in data.trace.views), "run")
        return f"Your best: {st.best_score:.4f} (exp {st.best_number}) over {runs} of yours."
    if st.best_number is None:
        return f"No change was kept: the best is the reference ({_bpb(st.best_score)})."
    if st.confirmed is None:
        return (f"In-session gain Δ {st.delta:+.4f} (exp {st.best_number}), not confirmed: "
                "`autolab confirm` re-runs the reference and the best side by side.")  # fmt: skip
    return f"Confirmed gain: {confirmation_text(st.confirmed)}."


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def experiment_rows(data: ReportData) -> list[tuple[str, ...]]:
    """Every experiment tried, as (#, session, kind, verdict, val_bpb, Δ ref, vs best before,
    description, reason): shared by both renderings."""
    rows = []
    for v in data.views:
        r = data.standings.row(v.number)
        star = " ★" if r and r.is_best else ""
        what = f"re-check of #{v.rechecks}" if v.kind == "recheck" else v.kind
        if r and r.confirms:
            what = f"confirm: {r.confirms}"
        rows.append((
            str(v.number), str(v.session_id or ""), what, v.status + star,
            _bpb(r.score) if r and r.score is not None else "",
            _signed(r.delta if r else None),
            _signed(r.delta_best_before if r else None),
            " ".join(v.description.split()),
            " ".join(v.reason.split()),
        ))  # fmt: skip
    return rows


EXPERIMENT_HEADER = ("#", "session", "kind", "verdict", "val_bpb", "Δ ref", "vs best before",
                     "description", "reason")  # fmt: skip


def title(data: ReportData) -> str:
    return data.session.branch if data.session else "your runs (autolab train)"


def render_markdown(data: ReportData) -> str:
    lines = [f"# autolab report: {title(data)}", "", f"**{headline(data)}**", ""]
    lines += [f"![progress]({CHART_FILE})", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in facts(data)]
    lines += manual.markdown(data.manual) if data.session is None else _session_markdown(data)
    lines += ["", "## Diff", "", data.diff_note, ""]
    if data.diff:
        lines += ["```diff", data.diff, "```", ""]
    lines += ["## Samples", "", data.samples_note, ""]
    if data.samples:
        lines += ["```", samples_text(data.samples), "```", ""]
    lines.append(f"Generated by autolab from {data.workspace} at "
                 f"{time.strftime('%Y-%m-%d %H:%M')}; best {_bpb(_best_bpb(data))}.")  # fmt: skip
    return "\n".join(lines) + "\n"


def _best_bpb(data: ReportData) -> float | None:
    return data.status.best_bpb if data.status else data.standings.best_score


def _session_markdown(data: ReportData) -> list[str]:
    """The session's kept changes and every experiment, then the person's runs, if any."""
    lines = [
        "",
        "Δ is val_bpb minus the reference (the mean of the baseline runs): negative is "
        "better. A re-checked experiment's val_bpb is the mean over its runs.",
        "",
    ]
    lines += ["## Kept changes", ""]
    if data.kept:
        lines += ["| # | change | val_bpb | vs best before | Δ ref |", "|---:|---|---:|---:|---:|"]
        for c in data.kept:
            lines.append(
                f"| {c.number} | {_md_cell(c.description)} | {c.score:.4f} | "
                f"{c.delta_best_before:+.4f} | {c.delta:+.4f} |"
            )
    else:
        lines.append("No change beat the reference by more than the noise.")
    lines += ["", "## Every experiment", ""]
    lines += ["| " + " | ".join(EXPERIMENT_HEADER) + " |",
              "|" + "|".join("---:" if i < 2 or 4 <= i <= 6 else "---"
                             for i in range(len(EXPERIMENT_HEADER))) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in experiment_rows(data)]
    return lines + manual.markdown(data.manual)


def samples_text(samples: list[str]) -> str:
    """One sample a line (names), or passages apart by a blank line."""
    return ("\n\n" if any("\n" in t.strip() for t in samples) else "\n").join(
        t.strip("\n") for t in samples
    )


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 980px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
img { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: left;
         vertical-align: top; }
th { color: #555; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.facts th { width: 11em; } .good { color: #1a7f1a; font-weight: 600; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 13px; }
.add { color: #1a7f1a; } .del { color: #b31d28; } .hunk { color: #6f42c1; }
.headline { font-size: 1.15em; font-weight: 600; }
.note { color: #666; } footer { color: #888; font-size: 0.85em; margin-top: 2em; }
"""


def render_html(data: ReportData, png: bytes) -> str:
    e = html.escape
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>autolab report: {e(title(data))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>autolab report: {e(title(data))}</h1>",
        f'<p class="headline">{e(headline(data))}</p>',
    ]
    if data.status is not None:
        parts.append(f'<p>best val_bpb <span class="good">{e(_best_line(data))}</span>'
                     f" against a reference of {_bpb(data.status.reference_bpb)}</p>")  # fmt: skip
    parts += [
        f'<img alt="val_bpb per experiment" src="data:image/png;base64,{image}">',
        '<table class="facts">',
        *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts(data)),
        "</table>",
    ]
    parts += manual.html_parts(data.manual) if data.session is None else _session_html(data)
    parts += ["<h2>Diff</h2>", f'<p class="note">{e(data.diff_note)}</p>']
    if data.diff:
        parts.append(f"<pre>{_diff_html(data.diff)}</pre>")
    parts += ["<h2>Samples</h2>", f'<p class="note">{e(data.samples_note)}</p>']
    if data.samples:
        parts.append(f"<pre>{e(samples_text(data.samples))}</pre>")
    parts += [
        f"<footer>Generated by autolab from {e(str(data.workspace))} at "
        f"{time.strftime('%Y-%m-%d %H:%M')}.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _session_html(data: ReportData) -> list[str]:
    """The session's kept changes and every experiment, then the person's runs, if any."""
    e = html.escape
    parts = ["<h2>Kept changes</h2>"]
    if data.kept:
        parts.append(
            "<table><tr><th>#</th><th>change</th><th>val_bpb</th><th>vs best before</th>"
            "<th>Δ ref</th></tr>"
        )
        for c in data.kept:
            parts.append(
                f'<tr><td class="n">{c.number}</td><td>{e(c.description)}</td>'
                f'<td class="n">{c.score:.4f}</td><td class="n">{c.delta_best_before:+.4f}</td>'
                f'<td class="n">{c.delta:+.4f}</td></tr>'
            )
        parts.append("</table>")
    else:
        parts.append('<p class="note">No change beat the reference by more than the noise.</p>')
    parts += [
        "<h2>Every experiment</h2>",
        '<p class="note">Δ is val_bpb minus the reference: negative is better.</p>',
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in EXPERIMENT_HEADER) + "</tr>",
    ]
    for row in experiment_rows(data):
        cells = "".join(
            f'<td class="n">{e(c)}</td>' if i < 2 or 4 <= i <= 6 else f"<td>{e(c)}</td>"
            for i, c in enumerate(row)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")  # fmt: skip
    return parts + manual.html_parts(data.manual)


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        css = ""
        if line.startswith("+") and not line.startswith("+++"):
            css = "add"
        elif line.startswith("-") and not line.startswith("---"):
            css = "del"
        elif line.startswith("@@"):
            css = "hunk"
        text = html.escape(line)
        lines.append(f'<span class="{css}">{text}</span>' if css else text)
    return "\n".join(lines)
