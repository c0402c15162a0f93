"""`autolab prepare`: turn a dataset into cached token shards and say what came out."""

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from autolab.data import load_tokenizer, prepare, read_tokens
from autolab.data.sources import SOURCES, check_format_flags
from autolab.workspace import CONFIG_FILE, load_workspace

TOP_TOKENS = 20


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="prepare a dataset: split, tokenize, write token shards",
        description="Prepare a dataset once: documents -> train/dev/val split -> tokenizer -> "
        "token shards under $AUTOLAB_HOME (cached by content).",
    )
    p.add_argument(
        "dataset",
        nargs="?",
        metavar="DATASET",
        help=f"one of {', '.join(SOURCES)}, or a path to a .txt/.jsonl/.parquet file or folder "
        "(default: the dataset of the workspace in the current directory, else names)",
    )
    p.add_argument(
        "--tokenizer",
        help="char, byte or bpe:N (default: the workspace's tokenizer, else char)",
    )
    p.add_argument(
        "--from",
        dest="source_path",
        metavar="PATH",
        help="read a local copy (default: the dataset's usual source)",
    )
    p.add_argument("--lines", action="store_true", help=".txt: one document per line")
    p.add_argument("--field", help=".jsonl: the field holding the text (default: text)")
    p.add_argument("--column", help=".parquet: the column holding the text (default: text)")
    p.add_argument("--home", metavar="DIR", help="data directory (default: $AUTOLAB_HOME)")
    p.add_argument(
        "--secret-split",
        action="store_true",
        help="pick the validation documents with a secret kept in the sealed store, for a "
        "machine where the raw text cannot be hidden from experiments (scores then compare "
        "only within this split)",
    )
    p.add_argument("--stats", action="store_true", help=f"show the top {TOP_TOKENS} tokens")
    p.add_argument(
        "--plot",
        nargs="?",
        const="token-frequencies.png",
        metavar="PNG",
        help="write a bar chart of the top 30 train tokens (default: token-frequencies.png)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    console = Console(highlight=False)
    start = time.perf_counter()
    use_workspace_defaults(args)
    source = Path(args.source_path).expanduser() if args.source_path else None
    check_format_flags(args.dataset, source, bool(args.field), bool(args.column))
    prepared = prepare(
        dataset=args.dataset,
        tokenizer=args.tokenizer,
        source_path=args.source_path,
        lines=args.lines,
        field=args.field,
        column=args.column,
        home=args.home,
        secret_split=args.secret_split,
    )
    seconds = time.perf_counter() - start
    meta = prepared.meta
    how = "cached" if prepared.cached else f"prepared in {seconds:.1f}s"
    console.print(Text.assemble((meta["dataset"], "bold"), f": {how}"))
    console.print(f"source: {meta['source']}", soft_wrap=True)
    console.print(
        f"tokenizer {meta['tokenizer']}, vocabulary {meta['vocab_size']:,}, "
        f"dtype {meta['dtype']}, unknown chars {meta['unknown_chars']:,}"
    )
    console.print(sizes_table(meta))
    console.print(f"shards: {prepared.data_dir}", soft_wrap=True)
    console.print(f"sealed val: {prepared.val_path}", soft_wrap=True)
    if args.stats:
        console.print(top_tokens_table(prepared))
    if args.plot:
        from autolab.data.plot import plot_token_frequencies

        chart = plot_token_frequencies(prepared.data_dir, Path(args.plot))
        console.print(f"chart: {chart}", soft_wrap=True)
    return 0


def use_workspace_defaults(args) -> None:
    """With no DATASET, inside a workspace: its dataset, tokenizer, source and split, the data
    `autolab train` there would use (a flag given still wins). Elsewhere: names, char."""
    if args.dataset is None and (Path.cwd() / CONFIG_FILE).is_file():
        workspace = load_workspace(Path.cwd())
        args.dataset = workspace.dataset
        args.tokenizer = args.tokenizer or workspace.tokenizer
        args.source_path = args.source_path or workspace.source
        args.secret_split = args.secret_split or workspace.secret_split
    args.dataset = args.dataset or "names"
    args.tokenizer = args.tokenizer or "char"


def sizes_table(meta: dict) -> Table:
    table = Table(box=None, pad_edge=False)
    for name in ("split", "documents", "bytes", "tokens", "bytes/token"):
        table.add_column(name, justify="left" if name == "split" else "right")
    splits = ("train", "dev", "val")
    rows = {s: [meta[k][s] for k in ("documents", "bytes", "tokens")] for s in splits}
    rows["total"] = [sum(column) for column in zip(*rows.values(), strict=True)]
    for split, (docs, nbytes, tokens) in rows.items():
        table.add_row(
            split, f"{docs:,}", f"{nbytes:,}", f"{tokens:,}", f"{nbytes / max(tokens, 1):.2f}"
        )
    return table


def top_tokens_table(prepared) -> Table:
    """The most frequent tokens of the train split (never the sealed val)."""
    meta = prepared.meta
    tokenizer = load_tokenizer(prepared.data_dir)
    train = read_tokens(prepared.data_dir / "train.bin", meta)
    counts = np.bincount(train, minlength=meta["vocab_size"])
    table = Table(title=f"top {TOP_TOKENS} train tokens", box=None, pad_edge=False)
    for name in ("id", "token", "count", "share"):
        table.add_column(name, justify="left" if name == "token" else "right")
    for token_id in np.argsort(-counts, kind="stable")[:TOP_TOKENS]:
        count = int(counts[token_id])
        table.add_row(
            str(token_id),
            tokenizer.token_label(int(token_id)),
            f"{count:,}",
            f"{count / max(len(train), 1):.1%}",
        )
    return table
