"""`autolab train`: run the workspace's train.py once, with a live progress bar, then score it."""

import contextlib
import statistics
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from autolab.durations import parse_duration
from autolab.errors import UsageError
from autolab.manual.recording import TrainRecording
from autolab.sampling_launcher import forked_samples, format_samples
from autolab.sandbox.availability import add_isolation_argument, isolation_from_args
from autolab.summary import format_summary
from autolab.views.progress import DEFAULT_INTERVAL, ProgressLines, check_interval
from autolab.workspace import load_workspace, new_run_dir, prepare_data, sizing_note


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the workspace's train.py once and print its sealed score",
        description="Run train.py in its own process for the time budget, score the model it "
        "hands over in a fresh process, print the summary block and a few samples. Each run is "
        "recorded in the ledger as a manual experiment (its train.py kept as a commit under "
        "refs/autolab/tried/<n>) with a verdict against your best.",
    )
    parser.add_argument("--budget", help="training time (30s, 5m); default from autolab.toml")
    parser.add_argument("--device", help="auto | cpu | cuda; default from autolab.toml")
    parser.add_argument("--seed", type=int, help="default from autolab.toml")
    parser.add_argument("--samples", type=int, default=5, help="samples to print afterwards")
    parser.add_argument(
        "--threads", type=int, metavar="T", help="torch CPU threads the harness gives the run "
        "(default: torch's own, about one per core)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="train N times with seeds seed..seed+N-1: the mean is the score, the spread the "
        "noise band later verdicts use",
    )
    parser.add_argument("-m", "--message", help="what you changed (default: the constants that "
                        "changed since your previous run)")  # fmt: skip
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not record this run in the ledger (no experiment, no verdict)",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help="with no terminal (a log, a pipe): a progress line every S seconds",
    )
    add_isolation_argument(parser)
    parser.add_argument("-C", "--workspace", default=".", metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from autolab.experiment import workers_for
    from autolab.harness.settings import RunSettings

    console = Console()
    interval = check_interval(args.progress_interval)
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {args.threads})")
    workspace = load_workspace(args.workspace)
    budget = parse_duration(args.budget) if args.budget else workspace.budget_seconds
    device = resolve_cli_device(args.device or workspace.device)
    if note := sizing_note(workspace, device):
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    isolation = isolation_from_args(args)
    recording = None if args.no_record else TrainRecording.open(workspace, args.message)
    started = time.time()
    data = prepare_data(workspace)
    prepare_seconds = time.time() - started
    seed = workspace.seed if args.seed is None else args.seed
    source = read_source(workspace.train_py)  # the exact bytes trained, line endings included
    # One pair of zygotes for every repeat and for the samples: their start-up is paid once,
    # and the samples come from a child of the evaluator's zygote, which has torch loaded.
    workers = workers_for(workspace.train_py, data.data_dir, device, data.val_path, isolation)
    first_dir, scores = None, []
    with workers:
        workers.start()
        for i in range(args.repeat):
            if args.repeat > 1:
                console.print(f"[bold]run {i + 1}/{args.repeat}[/] (seed {seed + i})",
                              highlight=False)  # fmt: skip
            run_dir = _new_run_dir(workspace, recording, source, seed + i, i, args.repeat)
            settings = RunSettings(data_dir=data.data_dir, run_dir=run_dir, budget_seconds=budget,
                                   device=device, seed=seed + i,
                                   threads=args.threads or 0)  # fmt: skip
            try:
                result = _train_once(console, workspace, settings, data, workers, interval,
                                     recording.on_metrics() if recording else None)  # fmt: skip
            except KeyboardInterrupt:
                if recording:
                    recording.interrupted()
                raise
            result.wall_seconds += prepare_seconds  # finding the data is part of the overhead
            if result.status != "ok":
                console.print(f"[bold red]{result.status}:[/] {result.reason}", highlight=False)
                console.print(f"log: {run_dir / 'run.log'}")
                if recording:
                    recording.failed(result)
                if i == 0:
                    return 1
                break
            _print_scored(console, result)
            if recording:
                recording.scored(result)
            scores.append(result.val_bpb)
            first_dir = first_dir or run_dir
        if len(scores) > 1:
            mean, spread = statistics.fmean(scores), statistics.stdev(scores)
            console.print(f"mean of {len(scores)} runs: {mean:.6f} ± {spread:.6f}",
                          highlight=False)  # fmt: skip
        if recording:
            _print_verdict(console, recording)
        if args.samples > 0:
            console.print("\n[bold]samples[/]")
            texts = forked_samples(workers.evaluator(), first_dir, data.data_dir, args.samples,
                                   seed, args.threads or 0)  # fmt: skip
            console.print(format_samples(texts), highlight=False, markup=False, soft_wrap=True)
    return 0


def _new_run_dir(workspace, recording, source: str, seed: int, index: int, repeat: int):
    """The run's folder: named by its experiment number when recorded, else by the time."""
    if recording:
        return new_run_dir(workspace, str(recording.begin(source, seed, index, repeat)))
    stamp = time.strftime("train-%Y%m%d-%H%M%S")
    return new_run_dir(workspace, stamp + (f"-{index + 1}" if repeat > 1 else ""))


def _print_scored(console, result) -> None:
    console.print(format_summary(result.summary()), highlight=False)
    if result.flags.get("reported_gap") is not None:
        gap = result.flags["reported_gap"]
        console.print(f"[yellow]note:[/] train.py printed a val_bpb {gap:+.3f} from the sealed one")


def _print_verdict(console, recording) -> None:
    verdict, number = recording.judge()
    style = "green" if verdict.status == "keep" else "yellow"
    console.print(f"[bold {style}]verdict:[/] {verdict.line}", highlight=False, soft_wrap=True)
    console.print(f"recorded as exp {number} (train.py kept as refs/autolab/tried/{number}); "
                  "`autolab results --researcher manual` lists your runs", style="dim",
                  highlight=False, soft_wrap=True)  # fmt: skip


def read_source(path) -> str:
    with open(path, newline="") as f:
        return f.read()


def _train_once(console, workspace, settings, data, workers, interval, record) -> object:
    """One run of train.py with the live progress bar (or progress lines without a terminal);
    `record` also gets every metrics record (the ledger's)."""
    from autolab.experiment import run_experiment

    budget = settings.budget_seconds
    console.print(
        f"training {workspace.train_py.name} on {workspace.dataset} ({workspace.tokenizer}) "
        f"for {budget:g}s on {settings.device} ({workers.isolation} isolation); "
        f"log: {settings.run_dir / 'run.log'}"
    )
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(
            "step {task.fields[step]:>5}  loss {task.fields[loss]}  "
            "{task.fields[speed]}  {task.fields[left]}"
        ),
        console=console,
        transient=True,
    )
    task = progress.add_task("train", total=1.0, step=0, loss="-", speed="", left="")

    def show(record: dict) -> None:
        progress.update(
            task,
            completed=record.get("progress", 0.0),
            step=record.get("step", 0),
            loss=f"{record['loss']:.4f}" if record.get("loss") is not None else "-",
            speed=f"{record.get('tokens_per_sec', 0) / 1000:.1f}k tok/s",
            left=f"{max(0.0, budget - record.get('training_seconds', 0)):.0f}s left",
        )

    watch = show if console.is_terminal else ProgressLines(interval)

    def on_metrics(metrics: dict) -> None:
        watch(metrics)
        if record is not None:
            record(metrics)

    with progress if console.is_terminal else contextlib.nullcontext():
        result = run_experiment(
            workspace.train_py, settings, data.val_path, on_metrics=on_metrics, workers=workers
        )
    if record is not None:
        record.flush()
    return result


def resolve_cli_device(requested: str) -> str:
    from autolab.harness.settings import resolve_device

    try:
        return resolve_device(requested)
    except ValueError as err:
        raise UsageError(str(err)) from None
