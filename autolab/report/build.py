"""The session report: progress.png, report.md and a self-contained report.html.

Everything comes from the ledger, git and the best run's exported model: the baseline and the
best score, each kept change with its gain, the cumulative diff of train.py from the session's
base commit to the best commit, samples from the best model, the setup and the LLM spend.
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
from autolab.report.chart import progress_chart
from autolab.track.ledger import RESULT_STATUSES, ExperimentView, Ledger, SessionView
from autolab.views.status import (
    SessionStatus,
    best_experiment,
    counts_line,
    format_seconds,
    runs_line,
    score,
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
    val_bpb: float
    gain: float  # over the best before it
    total_gain: float  # over the baseline


@dataclass
class ReportData:
    workspace: Path
    session: SessionView
    status: SessionStatus
    views: list[ExperimentView]
    kept: list[KeptChange]
    best: ExperimentView | None
    diff: str
    diff_note: str
    samples: list[str]
    samples_note: str
    counts: dict[str, int] = field(default_factory=dict)
    llm_tokens: tuple[int, int] = (0, 0)  # prompt, completion
    llm_cost_usd: float = 0.0


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
        data.views, data.status.baseline_bpb, tmp))  # fmt: skip
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
        raise UsageError(f"no research session in {root} yet: run `autolab research` first")
    status = session_status(ledger, session)
    views = ledger.experiments(session.id)
    best = best_experiment(views)
    diff, diff_note = _diff(root, session.config.get("base_commit"), best)
    samples, samples_note = _samples(root, best, num_samples)
    counts = {s: status.counts[s] for s in RESULT_STATUSES if s in status.counts}
    candidates = [v for v in views if v.kind == "candidate"]
    return ReportData(
        workspace=root,
        session=session,
        status=status,
        views=views,
        kept=kept_changes(views, status.baseline_bpb),
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
    )


def kept_changes(views: list[ExperimentView], baseline_bpb: float | None) -> list[KeptChange]:
    """Kept candidates in order, each with its gain over the best before it."""
    if baseline_bpb is None:
        return []
    changes, best = [], baseline_bpb
    for v in views:
        if v.kind == "candidate" and v.status == "keep" and score(v) is not None:
            changes.append(
                KeptChange(
                    v.number, v.description, score(v), best - score(v), baseline_bpb - score(v)
                )  # fmt: skip
            )
            best = min(best, score(v))
    return changes


def _diff(root: Path, base: str | None, best: ExperimentView | None) -> tuple[str, str]:
    if not base:
        return "", "the session recorded no base commit"
    if best is None or best.kind != "candidate":
        return "", "no change was kept: train.py is as the session found it"
    try:
        diff = gitrepo.git(root, "diff", base, best.commit_sha, "--", TRAIN_FILE)
    except gitrepo.GitError as err:
        return "", f"git could not diff {base[:7]}..{best.commit_sha[:7]}: {err}"
    span = f"{base[:7]} (session start) to {best.commit_sha[:7]} (exp {best.number})"
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
    s, st = data.session, data.status
    counts = counts_line(data.counts)
    rows = [
        ("session", f"{s.id} on {s.branch} ({st.state}{': ' + st.reason if st.reason else ''})"),
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
        ("experiments", f"{counts} (plus {runs_line(st)})"),
        (
            "baseline val_bpb",
            f"{_bpb(st.baseline_bpb)} ± {_bpb(st.noise_spread)}"
            if st.baseline_bpb is not None
            else "-",
        ),  # fmt: skip
        ("best val_bpb", _best_line(data)),
    ]
    prompt, completion = data.llm_tokens
    if prompt or completion or data.llm_cost_usd:
        rows.append(("LLM tokens", f"{prompt:,} prompt + {completion:,} completion, "
                                   f"${data.llm_cost_usd:.2f}"))  # fmt: skip
    else:
        rows.append(("LLM tokens", "none"))
    return rows


def _hardware(data: ReportData) -> str:
    """What the runs reported (e.g. "cpu (2 threads)"), else the session's device."""
    reported = sorted({v.hardware for v in data.views if v.hardware})
    return ", ".join(reported) or data.session.hardware or "-"


def _best_line(data: ReportData) -> str:
    st = data.status
    if st.best_bpb is None:
        return "-"
    return f"{st.best_bpb:.4f} (exp {st.best_number}, {st.gain:+.4f} vs baseline)"


def render_markdown(data: ReportData) -> str:
    st = data.status
    lines = [f"# autolab report: {data.session.branch}", "", f"![progress]({CHART_FILE})", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in facts(data)]
    lines += ["", "## Kept changes", ""]
    if data.kept:
        lines += ["| # | change | val_bpb | gain | total gain |", "|---:|---|---:|---:|---:|"]
        for c in data.kept:
            lines.append(
                f"| {c.number} | {_md_cell(c.description)} | {c.val_bpb:.4f} | "
                f"{c.gain:+.4f} | {c.total_gain:+.4f} |"
            )
    else:
        lines.append("No change beat the baseline by more than the noise.")
    lines += ["", "## Diff", "", data.diff_note, ""]
    if data.diff:
        lines += ["```diff", data.diff, "```", ""]
    lines += ["## Samples", "", data.samples_note, ""]
    if data.samples:
        lines += ["```", samples_text(data.samples), "```", ""]
    lines.append(f"Generated by autolab from {data.workspace} at "
                 f"{time.strftime('%Y-%m-%d %H:%M')}; best {_bpb(st.best_bpb)}.")  # fmt: skip
    return "\n".join(lines) + "\n"


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
.note { color: #666; } footer { color: #888; font-size: 0.85em; margin-top: 2em; }
"""


def render_html(data: ReportData, png: bytes) -> str:
    e = html.escape
    st = data.status
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>autolab report: {e(data.session.branch)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>autolab report: {e(data.session.branch)}</h1>",
        f'<p>best val_bpb <span class="good">{_bpb(st.best_bpb)}</span>'
        f" against a baseline of {_bpb(st.baseline_bpb)}</p>",
        f'<img alt="val_bpb per experiment" src="data:image/png;base64,{image}">',
        '<table class="facts">',
        *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts(data)),
        "</table>",
        "<h2>Kept changes</h2>",
    ]
    if data.kept:
        parts.append(
            "<table><tr><th>#</th><th>change</th><th>val_bpb</th><th>gain</th>"
            "<th>total gain</th></tr>"
        )
        for c in data.kept:
            parts.append(
                f'<tr><td class="n">{c.number}</td><td>{e(c.description)}</td>'
                f'<td class="n">{c.val_bpb:.4f}</td><td class="n">{c.gain:+.4f}</td>'
                f'<td class="n">{c.total_gain:+.4f}</td></tr>'
            )
        parts.append("</table>")
    else:
        parts.append('<p class="note">No change beat the baseline by more than the noise.</p>')
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
