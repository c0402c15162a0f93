"""`autolab results`: the workspace's experiments, as a table, results.tsv or JSON."""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autolab.errors import UsageError
from autolab.hardware import distinct, label
from autolab.track.ledger import ExperimentView, Ledger, NoiseRow, require_ledger
from autolab.track.results_tsv import format_results_tsv
from autolab.track.standings import (
    MANUAL_HISTORY,
    Standing,
    Standings,
    by_number,
    every_branch,
    manual_noise,
)
from autolab.views.integrity import TAMPERED_EXIT, chain_warnings, disagreements

STATUS_STYLES = {
    "keep": "green",
    "discard": "dim",
    "crash": "red",
    "timeout": "red",
    "invalid": "red",
    "interrupted": "yellow",
    "pruned": "magenta",
    "running": "blue",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "results",
        help="list the experiments in a workspace's ledger",
        description="List the experiments in a workspace's ledger, oldest first.",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--tsv", action="store_true", help="print results.tsv (autoresearch)")
    output.add_argument("--json", action="store_true", help="print a JSON list of experiments")
    parser.add_argument(
        "--researcher",
        metavar="NAME",
        help="only experiments by NAME: manual (your `autolab train` runs), search, llm, "
        "command or baseline (default: all)",
    )
    parser.add_argument(
        "-C", "--workspace", default=".", metavar="DIR", help="the workspace (default: here)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace)
    require_ledger(workspace)
    with Ledger.for_workspace(workspace) as ledger:
        views = by_researcher(ledger.experiments(), args.researcher)
        branches = every_branch(ledger)
        noise = manual_noise(ledger)
        warnings = chain_warnings(ledger)
        warnings_exit = TAMPERED_EXIT if warnings else 0
        warnings += disagreements(ledger, workspace.resolve())
    standing = by_number(branches)
    if args.tsv:
        sys.stdout.write(format_results_tsv(views))
    elif args.json:
        confirmed = {st.best_number: st.confirmed for st in branches.values() if st.confirmed}
        rows = [experiment_json(v, standing.get(v.number), confirmed.get(v.number))
                for v in views]  # fmt: skip
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        console = Console()
        console.print(results_table(views, standing))
        for line in hardware_lines(views):
            console.print(line, highlight=False, markup=False)
        shown = {v.number for v in views}
        for st in branches.values():
            if any(r.number in shown for r in st.rows):
                line = manual_line(st, noise) if st.tag == MANUAL_HISTORY else standing_line(st)
                console.print(line, highlight=False)
        if views:
            console.print(
                "Δ ref: val_bpb − the reference; Δ prev: − the best before it; "
                "negative is better; ★ the best",
                style="dim",
                highlight=False,
            )
    for line in warnings:
        Console(stderr=True).print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False,
                                   soft_wrap=True)  # fmt: skip
    return warnings_exit


def experiment_json(view: ExperimentView, standing: Standing | None, confirmed=None) -> dict:
    """The ledger's fields and the experiment's standing (Δ against its branch's reference);
    the best's row also carries its confirmation (`confirmed`), when it was re-run."""
    row = view.to_dict()
    row.update(
        delta=standing.delta if standing else None,
        best_before=standing.best_before if standing else None,
        delta_best_before=standing.delta_best_before if standing else None,
        is_best=standing.is_best if standing else False,
        confirms=standing.confirms if standing else None,
    )
    if confirmed is not None:
        row["confirmed"] = asdict(confirmed)
    return row


def signed(value: float | None, digits: int = 4) -> str:
    """Δ as text: "-0.0123" (better) or "+0.0040"; "" when there is none."""
    return "" if value is None else f"{value:+.{digits}f}"


def standing_line(st: Standings) -> str:
    """ "autolab/x: reference 2.9169 ± 0.0030 (keep band 0.0060); best exp 7 2.9000 (Δ -0.0169)
    ; 1 kept, 2 discarded (2 baseline runs, 1 re-check)"."""
    from autolab.track.confirmation import confirmation_text
    from autolab.views.status import counts_line, runs_line

    parts = [f"autolab/{st.tag}:"]
    ref = st.reference
    if ref is None:
        parts.append("no reference yet (the baseline runs have not finished)")
    else:
        parts.append(f"reference {ref.bpb:.4f} ± {ref.spread:.4f} (keep band {ref.band:.4f});")
        if st.best_number is None:
            parts.append("nothing kept, the best is the reference;")
        else:
            parts.append(f"best exp {st.best_number} {st.best_score:.4f} "
                         f"(Δ {signed(st.delta)});")  # fmt: skip
    parts.append(f"{counts_line(st.counts)} ({runs_line(st.counts)})")
    if st.confirmed is not None:
        parts.append(f"; {confirmation_text(st.confirmed)}")
    return " ".join(parts)


def by_researcher(views: list[ExperimentView], researcher: str | None) -> list[ExperimentView]:
    """The experiments `researcher` ran (None: all); an unknown name is an error, not a blank."""
    if researcher is None:
        return views
    known = sorted({v.researcher for v in views if v.researcher})
    if researcher not in known:
        names = ", ".join(known) or "none yet"
        raise UsageError(f"no experiments by researcher {researcher!r} (researchers: {names})")
    return [v for v in views if v.researcher == researcher]


def manual_line(st: Standings, noise: tuple[NoiseRow, int] | None) -> str:
    """ "manual runs: best exp 7 2.8610; noise band 0.0100 (exp 5's 3 runs); 1 kept"."""
    from autolab.track.standings import band
    from autolab.views.status import counts_line

    parts = ["manual runs:"]
    if st.best_number is not None:
        parts.append(f"best exp {st.best_number} {st.best_score:.4f};")
    if noise is None:
        parts.append("noise band unknown (`autolab train --repeat 3` measures it);")
    else:
        row, number = noise
        parts.append(f"noise band {band(row, {}):.4f} (exp {number}'s {row.runs} runs);")
    parts.append(counts_line(st.counts))
    return " ".join(parts)


def results_table(views: list[ExperimentView], standing: dict[int, Standing]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    table.add_column("#", justify="right")
    table.add_column("status")
    # Δ ref: score - the reference; Δ prev: score - the best before it. Negative is better.
    for name in ("val_bpb", "Δ ref", "Δ prev", "mem GB", "min"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("description", min_width=24, overflow="fold")
    machines = distinct(v.flags.get("hardware") for v in views)
    if len(machines) > 1:
        table.add_column("hw", justify="right")  # which fingerprint, listed under the table
    for v in views:
        row = standing.get(v.number)
        style = STATUS_STYLES.get(v.status, "")
        status = f"[{style}]{v.status}[/]" if style else v.status
        number = f"[bold green]★[/]{v.number}" if row is not None and row.is_best else str(v.number)
        seconds = v.wall_seconds if v.wall_seconds is not None else v.total_seconds
        score = row.score if row is not None else None
        table.add_row(
            number,
            status,
            "" if score is None else f"{score:.6f}",
            _delta_cell(row.delta if row else None),
            _delta_cell(row.delta_best_before if row else None),
            "" if v.peak_memory_mb is None else f"{v.peak_memory_mb / 1024:.1f}",
            "" if seconds is None else f"{seconds / 60:.1f}",
            describe(v),
            *([hardware_key(v, machines)] if len(machines) > 1 else []),
        )
    if not views:
        table.caption = "no experiments yet"
    return table


def hardware_key(view: ExperimentView, machines: list[dict]) -> str:
    """ "hw2": the experiment's fingerprint's place in `machines`; "" when not recorded."""
    hardware = view.flags.get("hardware")
    return f"hw{machines.index(hardware) + 1}" if hardware in machines else ""


def hardware_lines(views: list[ExperimentView]) -> list[str]:
    """What the experiments ran on: one line, or one per fingerprint the hw column names."""
    machines = distinct(v.flags.get("hardware") for v in views)
    if len(machines) == 1:
        return [f"hardware: {label(machines[0])}"]
    return [f"hw{i}: {label(hardware)}" for i, hardware in enumerate(machines, 1)]


def _delta_cell(delta: float | None) -> str:
    return f"[green]{delta:+.4f}[/]" if delta is not None and delta < 0 else signed(delta)


def describe(v: ExperimentView) -> str:
    """The description on one line, dimmed for a baseline or a re-check (whose description
    already says so: "baseline (seed 0)", "re-check of exp 5 (seed 1005)")."""
    text = escape(" ".join(v.description.split()))
    return text if v.kind == "candidate" else f"[dim]{text}[/]"
