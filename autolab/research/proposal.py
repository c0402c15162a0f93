"""What researchers receive and return. Every researcher (search, llm, command) speaks this.

A researcher is any object with a `name` and `propose(context) -> Proposal | None`; returning
None means it has nothing more to try. The loop validates a proposal (it parses, still uses the
harness, only train.py changes), skips one identical to something already tried, runs it, and
records the outcome in the ledger; the next `context.history` includes it.
"""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LLMUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Proposal:
    source: str  # the whole new train.py
    description: str  # one line, as a person would write it: "increase DEPTH from 4 to 6"
    params: dict | None = None  # the configuration, for researchers that search a space
    usage: LLMUsage | None = None  # tokens and cost, for researchers that call an LLM


@dataclass
class Outcome:
    """One finished experiment, as a researcher sees it."""

    number: int
    description: str
    status: str  # keep | discard | crash | timeout | invalid | interrupted | pruned
    val_bpb: float | None  # the sealed score; None when there is none
    params: dict | None = None
    reason: str = ""  # why it crashed / was invalid
    parent_params: dict | None = None  # the constants of the train.py it changed
    kind: str = "candidate"  # baseline | candidate | recheck
    score: float | None = None  # what its verdict used (track.standings): None unless scored
    delta: float | None = None  # score - reference: negative is better
    num_steps: int | None = None
    tokens_per_sec: float | None = None
    peak_memory_mb: float | None = None
    pruned: dict | None = None  # a pruned run's point: research.pruning.Verdict.to_dict()


@dataclass
class ResearchContext:
    workspace: Path
    best_source: str  # train.py at the head of the research branch (the current best)
    program: str  # program.md: the goal and the rules, for agents
    history: list[Outcome] = field(default_factory=list)
    best_val_bpb: float | None = None
    baseline_val_bpb: float | None = None
    last_failure_log: str | None = None  # the tail of the last crashed run's log
    budget_seconds: float = 60.0
    noise_spread: float | None = None  # of the baseline runs
    keep_band: float | None = None  # a single run must beat the best by more to be kept
    device: str = ""
    # Experiments running now (`research --workers N`): proposed, not yet scored. A proposal
    # should differ from them as from the history.
    in_flight: list[Outcome] = field(default_factory=list)
