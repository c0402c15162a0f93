"""`autolab init [DIR]`: create a workspace (a git repo with train.py, program.md, autolab.toml)."""

from rich.console import Console

from autolab.workspace import init_workspace, load_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create a workspace: train.py, program.md and autolab.toml in a new git repo",
        description="Create a workspace: a git repository with train.py (the recipe), "
        "program.md (the brief) and autolab.toml (settings), and an initial commit.",
    )
    parser.add_argument("directory", nargs="?", default="autolab-workspace", metavar="DIR")
    parser.add_argument("--dataset", default="names", help="dataset name or local path")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="local file/folder for it (default: its usual source)",
    )
    parser.add_argument("--tokenizer", default="char", help="char | byte | bpe:N")
    parser.add_argument("--recipe", default="gpt", help="gpt | mlp")
    parser.add_argument("--budget", default="60s", help="training time per run (30s, 5m)")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto | cpu | cuda: the device train.py is sized for (auto: CUDA if torch sees it)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    root = init_workspace(
        args.directory,
        args.dataset,
        args.source,
        args.tokenizer,
        args.recipe,
        args.budget,
        args.device,
    )
    device = load_workspace(root).device
    console = Console()
    console.print(
        f"created workspace [bold]{root}[/] ({args.recipe} recipe on {args.dataset}, "
        f"sized for {device})"
    )
    console.print(f"next: cd {args.directory} && autolab train")
    return 0
