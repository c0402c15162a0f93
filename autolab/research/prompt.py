"""The prompt the agent researchers (llm, command) send: the program, the recipe, the results.

One function, `build_prompt(context)`, so that both agents see the same facts in the same order:
program.md, the budget and scores, the current best train.py, a compact results table, the tail
of the last failed run's log, and what to reply.
"""

from autolab.durations import format_duration
from autolab.research.proposal import Outcome, ResearchContext
from autolab.track.ledger import FAILED_STATUSES

RECENT_ROWS = 30  # most recent experiments shown in full; the baseline and the best always are
FAILURE_LOG_LINES = 60
FAILURE_LOG_CHARS = 4000

REPLY_FORMAT = """\
Propose ONE change to train.py that you expect to lower val_bpb. Reply in this format:

DESCRIPTION: <one line saying what changed, like a commit message: "increase DEPTH from 4 to 6">

then either one or more search/replace blocks

<<<<<<< SEARCH
lines copied exactly from the current train.py
=======
the lines to put in their place
>>>>>>> REPLACE

or, for a larger rewrite, the whole new train.py in one ```python block.

Each SEARCH must match exactly one place in the current train.py, indentation included. Keep
`from autolab.harness import Run` and the `run.finish(model, context_len=...)` call. Do not
repeat an experiment from the table above."""


def build_prompt(
    context: ResearchContext, instructions: str = REPLY_FORMAT, include_source: bool = True
) -> str:
    """The whole user prompt. Agents that read train.py themselves pass include_source=False."""
    sections = [
        context.program.strip(),  # program.md brings its own title
        "# Where things stand\n\n" + _standing(context),
    ]
    if include_source:
        sections.append(
            "# The current best train.py\n\n```python\n" + context.best_source.rstrip() + "\n```"
        )
    sections.append("# Results so far\n\n" + history_table(context.history))
    if context.in_flight:
        sections.append("# Running now (other workers; do not propose these again)\n\n"
                        + "\n".join(f"- exp {o.number}: {o.description}"
                                     for o in context.in_flight))  # fmt: skip
    if context.last_failure_log:
        sections.append("# The last failed run\n\n" + _failure(context))
    sections.append("# Your turn\n\n" + instructions.strip())
    return "\n\n".join(section for section in sections if section) + "\n"


def _standing(context: ResearchContext) -> str:
    device = f" on {context.device}" if context.device else ""
    lines = [
        f"Each run trains for {format_duration(context.budget_seconds)} of wall-clock time"
        f"{device}; val_bpb is measured afterwards by autolab (lower is better).",
        f"Reference val_bpb (mean of the baseline runs): {_bpb(context.baseline_val_bpb)}"
        + (f", run-to-run spread {context.noise_spread:.6f}" if context.noise_spread is not None
           else "")
        + f". Current best val_bpb: {_bpb(context.best_val_bpb)}.",
    ]  # fmt: skip
    if context.keep_band is not None:
        lines.append(
            f"A change is kept outright when it beats the best by more than {context.keep_band:.6f}"
            " (the noise band); a smaller win is re-run with another seed and kept only if the "
            "mean still wins. Δ is val_bpb minus the reference: negative is better."
        )
    return "\n".join(lines)


def history_table(history: list[Outcome], recent: int = RECENT_ROWS) -> str:
    """A fixed-width table: the most recent `recent` rows, plus the baseline and the best."""
    if not history:
        return "No experiments yet: the current train.py is the baseline."
    rows = sorted(history, key=lambda o: o.number)
    shown = set(range(max(0, len(rows) - recent), len(rows))) | {0}
    kept = [i for i, o in enumerate(rows) if o.status == "keep" and o.kind == "candidate"
            and _score(o) is not None]  # fmt: skip
    if kept:
        shown.add(min(kept, key=lambda i: _score(rows[i])))
    lines = [f"{'#':>4}  {'status':<11} {'val_bpb':>9} {'Δ ref':>8} {'steps':>6} {'tok/s':>7} "
             f"{'mem MB':>7}  description"]  # fmt: skip
    previous = -1
    for i in sorted(shown):
        if i > previous + 1:
            lines.append(f"{'':>4}  ... {i - previous - 1} more experiments ...")
        lines.append(_row(rows[i]))
        previous = i
    return "\n".join(lines)


def _score(outcome: Outcome) -> float | None:
    """The standings' score. An Outcome made by hand (a test, another tool) may carry only the
    sealed val_bpb: for keep and discard that is the score unless it was re-checked."""
    if outcome.score is not None or outcome.status not in ("keep", "discard"):
        return outcome.score
    return outcome.val_bpb


def _row(outcome: Outcome) -> str:
    text = " ".join(outcome.description.split())[:120]
    if outcome.kind != "candidate":
        text = f"[{outcome.kind}] {text}"
    if (outcome.status in FAILED_STATUSES or outcome.status == "pruned") and outcome.reason:
        text += " -- " + " ".join(outcome.reason.split())[:100]
    delta = "-" if outcome.delta is None else f"{outcome.delta:+.4f}"
    steps = "-" if outcome.num_steps is None else str(int(outcome.num_steps))
    rate = "-" if not outcome.tokens_per_sec else f"{outcome.tokens_per_sec:.0f}"
    memory = "-" if outcome.peak_memory_mb is None else f"{outcome.peak_memory_mb:.0f}"
    return (f"{outcome.number:>4}  {outcome.status:<11} {_bpb(_score(outcome)):>9} {delta:>8} "
            f"{steps:>6} {rate:>7} {memory:>7}  {text}")  # fmt: skip


def _failure(context: ResearchContext) -> str:
    failed = [o for o in context.history if o.status in FAILED_STATUSES]
    head = ""
    if failed:
        last = max(failed, key=lambda o: o.number)
        head = f"Experiment {last.number} ({last.description}) ended as {last.status}"
        head += f": {last.reason}.\n" if last.reason else ".\n"
    lines = context.last_failure_log.rstrip().splitlines()[-FAILURE_LOG_LINES:]
    tail = "\n".join(lines)[-FAILURE_LOG_CHARS:]
    return head + "The end of its log:\n\n```\n" + tail + "\n```"


def _bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"
