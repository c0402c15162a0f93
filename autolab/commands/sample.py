"""`autolab sample`: text from the workspace's last trained model."""

from autolab.errors import UsageError
from autolab.workspace import load_workspace, prepare_data


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="sample text from the last trained model",
        description="Sample from the model the last run handed over (names give new names, "
        "Shakespeare gives a passage).",
    )
    parser.add_argument("-n", "--num", type=int, default=10, help="how many samples")
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument(
        "--top-k", type=int, default=None, help="sample from the K likeliest (default: all)"
    )
    parser.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="max new tokens per sample (default: a line's worth (40) on one-per-line data, "
        "else 300)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--experiment",
        metavar="SEL",
        help="N, best, baseline, last or a run directory (default: best after research, "
        "else the last `autolab train` run)",
    )
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from autolab.sampling import sample_texts
    from autolab.sampling_launcher import format_samples

    if args.num < 1:
        raise UsageError("-n must be at least 1")
    if args.temperature < 0:
        raise UsageError("--temperature must be 0 (greedy) or more")
    from autolab.inspect.select import select_run

    workspace = load_workspace(args.workspace)
    run_dir = select_run(workspace, args.experiment).run_dir
    data = prepare_data(workspace)
    texts = sample_texts(
        run_dir, data.data_dir, args.num, args.prompt, args.temperature, args.top_k,
        args.tokens, args.seed,
    )  # fmt: skip
    if not texts:
        raise UsageError(f"no model in {run_dir}: the run did not finish; run `autolab train`")
    print(format_samples(texts))
    return 0
