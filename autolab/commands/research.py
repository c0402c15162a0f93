"""`autolab research`: the autonomous research loop on a workspace, with a live terminal view."""

import argparse
import os
import signal
import sys
import time

from rich.console import Console
from rich.live import Live

from autolab.durations import parse_duration
from autolab.errors import UsageError
from autolab.sandbox.availability import add_isolation_argument, isolation_from_args
from autolab.track.confirmation import DEFAULT_K as DEFAULT_CONFIRM
from autolab.views.progress import DEFAULT_INTERVAL, check_interval

AGENTS = ("search", "llm", "command")
# Researchers that prune by default: `search --prune` reached a better median final val_bpb than
# `search` at equal wall clock, on 4 seeds of 4 (bench/researchers.py, README "Results"). The
# others were not measured with it.
PRUNE_BY_DEFAULT = ("search",)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "research",
        help="run the research loop: propose, train, score sealed, keep or discard",
        description="Run experiments on a branch autolab/<tag> of the workspace: each changes "
        "train.py, trains for the budget, is scored in a sealed process and kept only if it "
        "beats the best by more than the measured noise.",
    )
    session = parser.add_argument_group("session")
    session.add_argument("--agent", default="search", choices=AGENTS, help="who proposes changes")
    session.add_argument("--budget", help="training time per experiment; default autolab.toml")
    session.add_argument(
        "--max-experiments", type=int, metavar="N", help="stop after N changes (default: no limit)"
    )
    session.add_argument(
        "--hours", type=float, metavar="H", help="stop after H hours (default: no limit)"
    )
    session.add_argument("--tag", help="branch autolab/<tag> (default: today's date, e.g. nov23)")
    session.add_argument("--resume", action="store_true", help="continue the session of --tag")
    session.add_argument(
        "--from",
        dest="start_from",
        metavar="N",
        help="start the new branch from experiment N's train.py: best (yours or a session's), "
        "last, a number (default: the current HEAD)",
    )
    session.add_argument("--device", help="auto | cpu | cuda; default from autolab.toml")
    session.add_argument("--seed", type=int, default=0, help="seed of the first baseline run")
    session.add_argument(
        "--wall-limit",
        help="time limit per run, start to handover (default: budget + 20%% warm-up + "
        "max(10s, 10%%))",
    )
    add_isolation_argument(session)
    parallel = parser.add_argument_group("several experiments at once on this machine")
    parallel.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="experiments in flight at once, each in its own git worktree and pinned to its "
        "own GPU or share of the cores; with --ray, tasks on the cluster at once "
        "(default: one per --gpus GPU, else 1)",
    )
    parallel.add_argument(
        "--gpus",
        metavar="LIST",
        help="CUDA sessions: the GPUs to use, one worker each, e.g. 0,2,3 (default: 0..N-1)",
    )
    parallel.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="torch CPU threads per experiment; T x workers may not exceed the cores "
        "(default: cores // workers)",
    )
    session.add_argument("-C", "--workspace", default=".", metavar="DIR")
    session.add_argument("--plain", action="store_true", help="print lines, no live view")
    session.add_argument(
        "--progress-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help="printing lines (--plain, a log, a pipe): the running experiment's step line "
        "every S seconds",
    )
    session.add_argument(
        "--notify-cmd",
        metavar="CMD",
        help="shell command run with a JSON payload on stdin at the session end, on a new best "
        "and on a crash streak (default: none)",
    )
    session.add_argument(
        "--confirm",
        type=int,
        default=DEFAULT_CONFIRM,
        metavar="K",
        help="at the end, re-run the reference and the best K times each and report the "
        "confirmed gain with its 95%% interval (`autolab confirm`); 0 skips it",
    )
    cluster = parser.add_argument_group("Ray cluster (optional extra: pip install 'autolab[ray]')")
    cluster.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="train each experiment as a Ray task on this cluster (auto: the one `ray start` "
        "left on this machine); ledger, git and the sealed score stay here (default: train here)",
    )
    cluster.add_argument(
        "--ray-cpus",
        type=float,
        default=1,
        metavar="N",
        help="CPUs each CPU experiment asks Ray for; a CUDA one asks for 1 GPU (default: 1)",
    )
    policy = parser.add_argument_group("keep or discard")
    policy.add_argument("--greedy", action="store_true", help="autoresearch's rule: any gain keeps")
    policy.add_argument(
        "--baseline-runs",
        type=int,
        metavar="R",
        help="baseline runs that measure the reference (default: 2 when earlier sessions of the "
        "same commit, budget and hardware give a spread to pool with, else 3)",
    )
    policy.add_argument("--k", type=float, default=2.0, help="noise band = k x baseline spread")
    policy.add_argument("--min-delta", type=float, default=0.002, help="smallest gain that counts")
    policy.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        help="stop a candidate early, recorded `pruned`, when its dev loss at 1/4, 1/2 or 3/4 of "
        "the budget is worse than the best's curve by more than max(2%%, 3 spreads) "
        "(default: on with --agent search, where it paid at equal wall clock; off with llm and "
        "command)",
    )
    llm = parser.add_argument_group("llm researcher")
    llm.add_argument(
        "--llm-base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (default: "
        "$AUTOLAB_LLM_BASE_URL, else [llm] base_url in autolab.toml)",
    )
    llm.add_argument(
        "--llm-model",
        help="model name (default: $AUTOLAB_LLM_MODEL, else [llm] model in autolab.toml)",
    )
    llm.add_argument("--llm-api-key", help="default $AUTOLAB_LLM_API_KEY or $OPENAI_API_KEY")
    command = parser.add_argument_group("command researcher")
    command.add_argument(
        "--agent-command",
        metavar="TEMPLATE",
        help='shell command with {prompt} or {prompt_file}, e.g. "claude -p {prompt}" '
        "(default: [command] template in autolab.toml)",
    )
    command.add_argument("--agent-timeout", default="15m", help="time limit per agent call")
    trackers = parser.add_argument_group("trackers (optional extras)")
    from autolab.exporters import add_tracker_flags

    add_tracker_flags(trackers)
    parser.set_defaults(func=run)


def prunes(args) -> bool:
    """Whether the session stops hopeless candidates early: --prune / --no-prune, else the
    researcher's default (PRUNE_BY_DEFAULT)."""
    return args.agent in PRUNE_BY_DEFAULT if args.prune is None else args.prune


def make_researcher(args, workspace):
    if args.agent == "search":
        from autolab.research.search import SearchResearcher

        return SearchResearcher(seed=args.seed)
    if args.agent == "llm":
        from autolab.research.llm import LLMResearcher, llm_settings

        flags = {
            "base_url": args.llm_base_url,
            "model": args.llm_model,
            "api_key": args.llm_api_key,
        }
        return LLMResearcher(**llm_settings(flags, os.environ, workspace.settings))
    from autolab.research.command import CommandResearcher

    template = args.agent_command or workspace.settings.get("command", {}).get("template")
    if not template:
        raise UsageError("--agent command needs --agent-command 'TEMPLATE {prompt}'")
    return CommandResearcher(
        template,
        timeout=parse_duration(args.agent_timeout, "--agent-timeout"),
        isolation=isolation_from_args(args),
    )


def run(args) -> int:
    from autolab.commands.train import resolve_cli_device
    from autolab.research.loop import ResearchSession, SessionOptions
    from autolab.research.policy import Policy
    from autolab.track.ledger import Ledger
    from autolab.workspace import STOP_FILE, load_workspace, sizing_note

    if args.ray:  # before anything: a missing extra is a one-line error
        from autolab.cluster.runner import import_ray

        import_ray()
        if args.ray_cpus <= 0:
            raise UsageError("--ray-cpus must be more than 0")
    if args.ray and (args.gpus or args.threads):
        flag = "--gpus" if args.gpus else "--threads"
        raise UsageError(f"{flag} shares this machine; with --ray the cluster places each "
                         "experiment: give --ray-cpus (a CUDA one asks for 1 GPU)")  # fmt: skip
    workspace = load_workspace(args.workspace)
    if args.max_experiments is not None and args.max_experiments < 0:
        raise UsageError("--max-experiments must be 0 or more")
    check_interval(args.progress_interval)
    if args.baseline_runs is not None and args.baseline_runs < 1:
        raise UsageError("--baseline-runs must be at least 1")
    from autolab.research.confirm import check_k

    check_k(args.confirm)
    budget = parse_duration(args.budget) if args.budget else workspace.budget_seconds
    device = resolve_cli_device(args.device or workspace.device)
    slots = _slots(args, device)
    if note := sizing_note(workspace, device):
        print(f"note: {note}", flush=True)
    researcher = make_researcher(args, workspace)
    from autolab.exporters import exporters_from_flags

    exporters = exporters_from_flags(args)  # a missing package stops here, before anything
    workspace.state_dir.mkdir(exist_ok=True)
    ledger = Ledger.for_workspace(workspace.root)
    tag = args.tag or _default_tag(ledger, args.resume)
    options = SessionOptions(
        tag=tag,
        budget_seconds=budget,
        device=device,
        max_experiments=args.max_experiments,
        hours=args.hours,
        baseline_runs=args.baseline_runs,
        policy=Policy(k=args.k, min_delta=args.min_delta, greedy=args.greedy),
        wall_limit=parse_duration(args.wall_limit, "--wall-limit") if args.wall_limit else None,
        seed=args.seed,
        isolation=isolation_from_args(args),
        prune=prunes(args),
        slots=slots,
    )
    (workspace.state_dir / STOP_FILE).unlink(missing_ok=True)
    if len(slots) > 1:
        from autolab.research.parallel import ParallelSession

        session = ParallelSession(workspace, researcher, options, ledger)
    else:
        session = ResearchSession(workspace, researcher, options, ledger)
    if args.ray:  # the runner hook: experiments train on the cluster, are scored here
        from autolab.cluster.runner import RayRunner

        options.runner = RayRunner(args.ray, session.runner.data.data_dir, device,
                                   options.isolation, args.ray_cpus, len(slots))  # fmt: skip
        for runner in getattr(session, "runners", [session.runner]):
            runner.train_and_score = options.runner
    try:
        return _run_session(args, workspace, session, exporters)
    finally:
        if options.runner is not None:
            options.runner.close()


def _slots(args, device: str):
    """Each experiment in flight's share of the machine (research.slots); with --ray, places
    on the cluster, which chooses the node and its GPU or CPUs."""
    from autolab.research.slots import Slot, parse_gpus, plan_slots

    if args.ray:
        if args.workers is not None and args.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {args.workers})")
        return [Slot(i, 0) for i in range(args.workers or 1)]

    gpus = parse_gpus(args.gpus)
    gpu_count = None
    if device.startswith("cuda"):
        import torch

        gpu_count = torch.cuda.device_count()
    return plan_slots(args.workers, gpus, device, args.threads, gpu_count=gpu_count)


def _run_session(args, workspace, session, exporters) -> int:
    from autolab.workspace import STOP_FILE

    ledger = session.ledger
    session.listeners.extend(exporters)
    start_from = _start_from(args, workspace, ledger, session.options.tag)
    session.resume() if args.resume else session.start()
    if start_from is not None:
        ledger.add_event("note", f"session {session.session_id} starts from exp "
                         f"{start_from.number}: {start_from.description}",
                         session_id=session.session_id)  # fmt: skip
    if args.notify_cmd:
        from autolab.notify import CommandNotifier

        session.listeners.append(CommandNotifier(args.notify_cmd))

    def request_stop(signum, frame):  # Ctrl-C interrupts the running experiment too
        session.stopping = session.interrupting = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    console = Console()
    if args.plain or not sys.stdout.isatty():
        status = _run_plain(session, console, args.progress_interval)
    else:
        from autolab.research.view import render

        with Live(render(session), console=console, refresh_per_second=4) as live:
            session.on_change = lambda: live.update(render(session))
            status = session.run()
            live.update(render(session))
    (workspace.state_dir / STOP_FILE).unlink(missing_ok=True)
    from autolab.research.view import standings_text

    summary = f"session {status}; results in {workspace.root / 'results.tsv'}"
    summary += f"; {standings_text(session.standings())}"
    console.print(summary, highlight=False)
    if args.confirm and status == "succeeded":
        status = _confirm(session, args, console)
    elif args.confirm and session.standings().best_number is not None:
        console.print(f"not confirmed (session {status}): `autolab confirm` re-runs the "
                      "reference and the best", highlight=False)  # fmt: skip
    return 0 if status in ("succeeded", "cancelled") else 1


def _confirm(session, args, console) -> str:
    """The confirmation at the end of a session that ended of itself (`--confirm K`)."""
    from autolab.commands.confirm import confirm_branch
    from autolab.research.confirm import Options

    if session.standings().best_number is None:
        console.print("nothing kept: nothing to confirm", highlight=False)
        return "succeeded"
    options = Options(
        tag=session.options.tag,
        k=args.confirm,
        device=session.options.device,
        isolation=session.isolation,
        wall_limit=session.options.wall_limit,
    )
    return confirm_branch(session.workspace, session.ledger, options, session.listeners, console,
                          args.progress_interval)  # fmt: skip


SHOWN_EVENTS = ("created", "verdict", "note", "alert", "session_started", "session_ended")


def _run_plain(session, console, interval: float) -> str:
    """Without a terminal: the session's events as lines, as they are recorded, and the running
    experiment's step line every `interval` seconds."""
    from autolab.views.events import event_line

    last_id, last_step = 0, 0.0

    def show() -> None:
        nonlocal last_id, last_step
        for event in session.ledger.events(after_id=last_id, session_id=session.session_id):
            last_id = event.id
            if event.kind == "step" and event.time - last_step >= interval:
                last_step = event.time
            elif event.kind not in SHOWN_EVENTS:
                continue
            console.print(event_line(event), highlight=False, markup=False, soft_wrap=True)

    session.on_change = show
    status = session.run()
    show()
    return status


def _start_from(args, workspace, ledger, tag):
    """--from: HEAD detached at the experiment's commit, so the branch starts there."""
    if not args.start_from:
        return None
    if args.resume:
        raise UsageError("--from starts a new session and --resume continues one: give one")
    from autolab.manual.select import detach_at
    from autolab.research.branch import branch_name

    return detach_at(workspace.root, ledger, args.start_from, branch_name(tag))


def _default_tag(ledger, resume: bool) -> str:
    if resume:
        latest = ledger.latest_session()
        if latest is None:
            raise UsageError("nothing to resume: no research session in this workspace yet")
        return latest.tag
    return time.strftime("%b%d").lower()
