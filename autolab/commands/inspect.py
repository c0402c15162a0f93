"""`autolab inspect`: what a trained model predicts next, and which tokens of a text surprise it."""

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from autolab.errors import UsageError

if TYPE_CHECKING:
    from autolab.inspect.select import LoadedRun

BAR_WIDTH = 24
DIFF_FULL_BITS = 2.0  # in --compare, a difference this large gets the strongest colour
BIGGEST_CHANGES = 8  # tokens listed where the second model did most better and most worse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="look inside a trained model: next-token probabilities, per-token surprisal",
        description="Show the next-token distribution after a prompt (--prompt), or colour each "
        "token of a text by the model's loss on it (--text). Prompts and texts are read as the "
        "start of a document. Runs: N (experiment number), best, baseline, last (the last "
        "`autolab train`), or a run directory; default best, or last with no research yet.",
    )
    parser.add_argument("--prompt", default="", help="text whose next token to show")
    parser.add_argument("--top", type=int, default=10, help="how many next tokens")
    parser.add_argument(
        "--text",
        metavar="FILE_OR_TEXT",
        help="a file (or - for stdin, or the text itself); default: none, show next tokens",
    )
    parser.add_argument("--surprisal", action="store_true", help="colour --text by loss")
    parser.add_argument(
        "--experiment",
        "-e",
        metavar="RUN",
        help="N, best, baseline or last (default: best after research, else the last "
        "`autolab train` run)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="with --text: per-token B minus A (default: no comparison)",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from autolab.inspect.select import load_selected, same_model, select_run
    from autolab.workspace import load_workspace, prepare_data

    if args.text is None and (args.surprisal or args.compare):
        raise UsageError("--surprisal and --compare need --text FILE_OR_TEXT")
    if args.text is not None and args.prompt:
        raise UsageError("give --prompt (next token) or --text (surprisal), not both")
    if args.compare and args.experiment:
        raise UsageError("--compare A B names both runs; drop --experiment")
    workspace = load_workspace(args.workspace)
    selectors = args.compare or [args.experiment]
    runs = [select_run(workspace, s) for s in selectors]  # fail fast, before loading data
    if args.compare and (same := same_model(selectors, runs)):
        raise UsageError(same)
    data_dir = prepare_data(workspace).data_dir
    loaded = [load_selected(selected, data_dir) for selected in runs]
    console = Console(highlight=False)
    if args.text is None:
        return show_next_tokens(console, loaded[0], args.prompt, args.top, args.json)
    text = read_text(args.text)
    if args.compare:
        return show_comparison(console, loaded, text, args.json)
    return show_surprisal(console, loaded[0], text, args.json)


def read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. too long for a file name: it is the text itself
        is_file = False
    if is_file:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"{path}: not UTF-8 at byte {err.start}") from err
    return source


# --- next token -------------------------------------------------------------------------------


def show_next_tokens(
    console: Console, run: "LoadedRun", prompt: str, top: int, as_json: bool
) -> int:
    from autolab.inspect.next_token import top_next_tokens

    tokenizer = run.tokenizer
    result = top_next_tokens(run.model, run.info, tokenizer, run.meta, prompt, top)
    if as_json:
        out = {
            "run": run.run.label,
            "run_dir": str(run.run.run_dir),
            "context": [tokenizer.token_label(i) for i in result.context_ids],
            "truncated": result.truncated,
            "entropy_bits": result.entropy_bits,
            "top": [row.to_dict() for row in result.top],
        }
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0
    context = "".join(tokenizer.token_label(i) for i in result.context_ids)
    cut = "…" if result.truncated else ""
    console.print(f"[bold]{run.run.label}[/]: next token after {cut}{context}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("token")
    table.add_column("id", justify="right", style="dim")
    table.add_column("probability", justify="right")
    table.add_column("")
    for row in result.top:
        table.add_row(
            str(row.rank),
            Text(row.label, style="bold"),
            str(row.token_id),
            f"{row.prob:.2%}",
            Text(bar(row.prob), style="cyan"),
        )
    console.print(table)
    shown = sum(row.prob for row in result.top)
    rest = tokenizer.vocab_size - len(result.top)
    console.print(
        f"the other {rest:,} tokens: {max(1 - shown, 0):.2%}; "
        f"entropy {result.entropy_bits:.2f} bits (uniform: {math.log2(tokenizer.vocab_size):.2f})"
    )
    return 0


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighth blocks, `fraction` of `width` cells long."""
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    return "█" * (eighths // 8) + (" ▏▎▍▌▋▊▉"[eighths % 8] if eighths % 8 else "")


# --- surprisal --------------------------------------------------------------------------------


def show_surprisal(console: Console, run: "LoadedRun", text: str, as_json: bool) -> int:
    from autolab.inspect.surprisal import score, surprisal_json

    result = score(run, text)
    if as_json:
        out = surprisal_json(run.run, result)
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0
    if not console.is_terminal:  # a pipe or a log: colours mean nothing there, numbers do
        print(f"{run.run.label}: {summary_line(result)}")
        print(token_table([("bits", [tok.bits for tok in result.tokens])], result.tokens))
        return 0
    worst = math.log2(run.tokenizer.vocab_size)
    coloured = Text()
    for tok in result.tokens:
        style = "dim" if tok.bits is None else f"black on {heat(tok.bits / worst)}"
        coloured.append(shown_text(tok.text), style=style)
    console.print(f"[bold]{run.run.label}[/]: {summary_line(result)}")
    console.print(coloured)
    console.print(
        Text.assemble(
            "loss per token: ",
            ("0 bits", f"black on {heat(0)}"),
            " ",
            (f"{worst / 2:.1f}", f"black on {heat(0.5)}"),
            " ",
            (f"≥ {worst:.1f} bits (a uniform guess)", f"black on {heat(1)}"),
        )
    )
    return 0


def show_comparison(console: Console, runs: "list[LoadedRun]", text: str, as_json: bool) -> int:
    from autolab.inspect.surprisal import comparison_json, diff_bits, score

    a, b = (score(run, text) for run in runs)
    if as_json:
        out = comparison_json(runs[0].run, a, runs[1].run, b)
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0
    diffs = diff_bits(a, b)
    label_a, label_b = runs[0].run.label, runs[1].run.label
    if not console.is_terminal:  # a pipe or a log: the per-token numbers, not a colour scale
        print(f"A {label_a}: {summary_line(a)}")
        print(f"B {label_b}: {summary_line(b)}")
        print(f"B - A: {b.bpb - a.bpb:+.4f} bpb on this text")
        bits = [("A bits", [t.bits for t in a.tokens]), ("B bits", [t.bits for t in b.tokens])]
        print(token_table([*bits, ("B - A", diffs)], a.tokens))
        return 0
    console.print(f"[bold]A[/] {label_a}: {summary_line(a)}")
    console.print(f"[bold]B[/] {label_b}: {summary_line(b)}")
    delta = b.bpb - a.bpb
    verdict = "better" if delta < 0 else "worse" if delta > 0 else "the same"
    colour = "green" if delta < 0 else "red" if delta > 0 else ""
    console.print(f"B is [{colour or 'default'}]{verdict}[/] by {abs(delta):.4f} bpb on this text")
    coloured = Text()
    for tok, d in zip(a.tokens, diffs, strict=True):
        style = "dim" if d is None else f"black on {heat(0.5 + d / (2 * DIFF_FULL_BITS))}"
        coloured.append(shown_text(tok.text), style=style)
    console.print(coloured)
    console.print(
        Text.assemble(
            "B minus A per token: ",
            (f"B {DIFF_FULL_BITS:g}+ bits better", f"black on {heat(0)}"),
            " ",
            ("same", f"black on {heat(0.5)}"),
            " ",
            (f"B {DIFF_FULL_BITS:g}+ bits worse", f"black on {heat(1)}"),
        )
    )
    console.print(Group(*changes_tables(a, b, diffs)))
    return 0


def changes_tables(a, b, diffs: list[float | None]) -> list[Table]:
    """Where B did most better and most worse than A, with a little context to the left."""
    scored = [(d, j) for j, d in enumerate(diffs) if d is not None]
    better = sorted(s for s in scored if s[0] < 0)[:BIGGEST_CHANGES]
    worse = sorted((s for s in scored if s[0] > 0), reverse=True)[:BIGGEST_CHANGES]
    tables = []
    for title, rows, style in (("B better", better, "green"), ("B worse", worse, "red")):
        if not rows:
            continue
        table = Table(title=f"{title} (most bits)", box=box.SIMPLE_HEAD, show_edge=False)
        for name in ("#", "context", "token", "A bits", "B bits", "B - A"):
            table.add_column(name, justify="left" if name in ("context", "token") else "right")
        for d, j in rows:
            context = "".join(tok.label for tok in a.tokens[max(0, j - 12) : j])
            table.add_row(
                str(j),
                Text(context, style="dim"),
                Text(a.tokens[j].label, style="bold"),
                f"{a.tokens[j].bits:.2f}",
                f"{b.tokens[j].bits:.2f}",
                Text(f"{d:+.2f}", style=style),
            )
        tables.append(table)
    return tables


def token_table(columns: list[tuple[str, list]], tokens) -> str:
    """Tab-separated: position, the token (escaped: \\n, \\t), then each column's bits ("-"
    where the token is not scored, e.g. the first)."""
    lines = ["\t".join(["#", "token", *(name for name, _ in columns)])]
    for j, tok in enumerate(tokens):
        label = tok.text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
        values = ["-" if v[j] is None else f"{v[j]:.3f}" for _, v in columns]
        lines.append("\t".join([str(j), label, *values]))
    return "\n".join(lines)


def summary_line(result) -> str:
    scored = [tok for tok in result.tokens if tok.nats is not None]
    mean_bits = result.total_nats / math.log(2) / len(scored)
    return (
        f"{result.bpb:.4f} bits per byte over {result.total_bytes:,} bytes "
        f"({len(scored):,} tokens, {mean_bits:.2f} bits per token)"
    )


def shown_text(text: str) -> str:
    """A token's text as printed in a coloured run: a newline keeps its place and shows as ⏎."""
    return text.replace("\n", "⏎\n").replace("\t", "⇥   ")


def heat(x: float) -> str:
    """Green (0) through yellow (0.5) to red (1), as a rich colour."""
    x = max(0.0, min(x, 1.0))
    red = round(255 * min(1.0, 2 * x))
    green = round(200 * min(1.0, 2 * (1 - x)))
    return f"rgb({max(red, 60)},{max(green, 60)},60)"
