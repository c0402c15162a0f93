"""The built-in, offline researcher: an Optuna sampler over the recipe's UPPER_CASE constants.

Each proposal changes one or two constants of the current best train.py:

1. The search space is centred on the current best (the values in `context.best_source`), so it
   follows the best as it moves; see `search_space` for the ranges.
2. A seeded rng picks which constants change (1 to `max_changes` of them), and one
   `study.ask(fixed_distributions=...)` over just those asks the sampler for their new values; the
   others keep the best's values. Choosing the subset outside the sampler keeps "one or two
   changes" exact, and TPE still learns per constant: it models each one independently from every
   past experiment's value of it, whichever other constant changed alongside. With TPE the pick
   is weighted by what a constant is (`importance`): learning rates and the model's size first,
   as a person tuning a recipe would; the random baseline picks uniformly.
2b. After a kept change, the next proposal takes the same step once more (Hooke and Jeeves'
   pattern move): 0.004 -> 0.008 that paid off is followed by 0.016. TPE models where good
   values were, not where they are heading, and a session of 20 experiments cannot wait for it
   to walk a learning rate that is ten times too small back one sample at a time.
3. The study is rebuilt from `context.history` on every call (`study.add_trial` of each outcome's
   full configuration and val_bpb), so the ledger is the only state: a restarted researcher
   learns from everything already tried, and a proposal depends only on (seed, history, best).
4. A configuration already in the history (or the best itself) is never proposed; the researcher
   asks again, up to `max_attempts` times, then returns None: nothing new left to try here.
"""

import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

from autolab.research.constants import (
    Constant,
    apply_changes,
    describe_changes,
    kinds_of,
    parse_constants,
    round_float,
)
from autolab.research.proposal import Outcome, Proposal, ResearchContext

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Constants that describe the machine or the run rather than the model: changing them can only
# add noise (a seed) or change how fast the same computation runs on this host (threads, device).
# Any name containing SEED is frozen as well.
FROZEN = frozenset({"DEVICE", "DTYPE", "NUM_THREADS", "NUM_WORKERS"})
# Finished experiments whose score says something about their configuration.
SCORED = ("keep", "discard")
# Failures of the configuration itself (too big for the budget, diverged into NaN, broke the
# model): told to the study as the worst score seen so far, so TPE learns to stay away. An
# `interrupted` run says nothing about its configuration and teaches the study nothing.
FAILED = ("crash", "timeout", "invalid")
SAMPLERS = ("tpe", "random")
# Scored experiments before TPE models the history (Optuna's default is 10). Experiments cost
# minutes and every proposal is already local to the best, so waiting long buys little: on the
# synthetic objective in tests/test_search.py, 5 reached a clearly better median than 10.
TPE_STARTUP = 5
# Float constant of value 0.0 (weight decay, a final LR fraction): a log scale cannot hold 0, so
# such a constant is searched linearly over [0, ZERO_FLOAT_HIGH]; once the best moves off 0 it
# is searched on a log scale around its new value.
ZERO_FLOAT_HIGH = 0.1
# The smallest float change TPE may propose, as a ratio: 0.0100 -> 0.0103 spends a 20 s run on
# a difference well inside the noise.
MIN_STEP = 1.15


class SearchResearcher:
    """Proposes one or two constant changes around the current best; learns from the history.

    sampler: "tpe" (Optuna's TPESampler, the default) or "random" (RandomSampler, a baseline).
    CMA-ES is not offered: it needs the separate `cmaes` package, and its state lives in the
    trials it asked itself, which a study rebuilt from the ledger does not have.
    frozen: names never changed, on top of FROZEN and any name containing SEED.
    """

    name = "search"

    def __init__(
        self,
        seed: int = 0,
        sampler: str = "tpe",
        max_changes: int = 2,
        max_attempts: int = 100,
        frozen: Iterable[str] = (),
    ):
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; one of: {', '.join(SAMPLERS)}")
        if max_changes < 1:
            raise ValueError("max_changes must be at least 1")
        self.seed, self.sampler = seed, sampler
        self.max_changes, self.max_attempts = max_changes, max_attempts
        self.frozen = FROZEN | set(frozen)

    def propose(self, context: ResearchContext) -> Proposal | None:
        constants = parse_constants(context.best_source)
        space = search_space(constants, self.frozen)
        if not space:
            return None
        best = {name: constants[name].value for name in space}
        tried = {_key(o.params, space) for o in context.history if o.params}
        tried.add(_key(best, space))
        if self.sampler == "tpe":
            further = _step_further(context.history, constants, space, best)
            if further and _key({**best, **further}, space) not in tried:
                return _proposal(context.best_source, constants, best, further)
        rng = np.random.default_rng([self.seed, len(context.history)])
        study = self._study(context, constants, space, best, seed=int(rng.integers(2**31)))
        names = list(space)
        weights = np.array([importance(n) if self.sampler == "tpe" else 1.0 for n in names])
        pick = weights / weights.sum()
        for _ in range(self.max_attempts):
            k = int(rng.integers(1, min(self.max_changes, len(names)) + 1))
            chosen = sorted(rng.choice(len(names), size=k, replace=False, p=pick))
            # A rejected ask stays RUNNING: TPE's constant liar then counts it as a bad result,
            # which steers the next ask away from it.
            trial = study.ask({names[i]: space[names[i]] for i in chosen})
            changes = {}
            for name, param in trial.params.items():
                value = _to_value(constants[name], param)
                small = self.sampler == "tpe" and _too_small(best[name], value)
                if not _same(value, best[name]) and not small:
                    changes[name] = value
            if changes and _key({**best, **changes}, space) not in tried:
                return _proposal(context.best_source, constants, best, changes)
        return None

    def _study(
        self,
        context: ResearchContext,
        constants: Mapping[str, Constant],
        space: Mapping[str, BaseDistribution],
        best: dict,
        seed: int,
    ) -> optuna.Study:
        """An in-memory study holding every scored (or failed) configuration in the history."""
        if self.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        scores = [o.val_bpb for o in context.history if o.status in SCORED and _finite(o.val_bpb)]
        penalty = max(scores) if scores else None
        seen = set()
        for outcome in context.history:
            value = _told_value(outcome, penalty)
            if outcome.params and value is not None:
                seen.add(_key(outcome.params, space))
                _add(study, constants, space, outcome.params, value)
        # The best is often a baseline or another researcher's change, outside the history's
        # params: it is the strongest evidence there is about where the good values lie.
        if _finite(context.best_val_bpb) and _key(best, space) not in seen:
            _add(study, constants, space, best, context.best_val_bpb)
        return study


# What a constant is, from its name: how much a change to it usually matters. The same order a
# person tuning a recipe follows: learning rates, then the model's size, then how much data a
# step sees; schedules, betas and the rest last.
IMPORTANCE = (
    (4.0, re.compile(r"(^|_)LR$|LEARNING_RATE")),
    (3.0, re.compile(r"DEPTH|LAYER|WIDTH|EMBD|DIM|HIDDEN|ASPECT|HEAD|MLP_RATIO")),
    (2.0, re.compile(r"BATCH|SEQ_LEN|CONTEXT|BLOCK_SIZE")),
)


def importance(name: str) -> float:
    """Relative weight of `name` when choosing which constants a proposal changes."""
    return next((weight for weight, pattern in IMPORTANCE if pattern.search(name)), 1.0)


def _proposal(source: str, constants, best: dict, changes: dict) -> Proposal:
    """`changes` to the best train.py, described as a person would, with the full configuration."""
    return Proposal(
        source=apply_changes(source, changes),
        description=describe_changes(best, changes, kinds_of(constants.values())),
        params={**best, **changes},
    )


def _step_further(history, constants, space, best) -> dict | None:
    """The pattern move: if the last scored experiment was kept, the same numeric step again,
    from the new best ({} when no constant can step further inside today's space)."""
    # Re-check runs of a configuration carry no params of their own; the candidate they checked
    # does, with the verdict of both.
    scored = [o for o in history if o.params and o.status in SCORED + FAILED]
    if not scored or scored[-1].status != "keep":
        return None
    last = scored[-1]
    if not last.parent_params or _key(last.params, space) != _key(best, space):
        return None
    # A win that needed a re-check was inside the noise: nothing to follow.
    if sum(_key(o.params, space) == _key(last.params, space) for o in scored) > 1:
        return None
    changes = {}
    for name, dist in space.items():
        old, new = last.parent_params.get(name), last.params.get(name)
        c = constants[name]
        if c.kind not in ("int", "pow2", "float") or old is None or _same(old, new):
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new)):
            continue
        if c.kind == "int":
            value = new + (new - old)
        elif old > 0 and new > 0:
            value = new * new / old
            value = round_float(value) if c.kind == "float" else int(round(value))
        else:
            continue
        param = _to_param(c, value)
        if param is not None and _contains(dist, param):
            changes[name] = value
    return changes


def _too_small(old, new) -> bool:
    """A float change of less than MIN_STEP either way (of the value, or of 1 - value for a
    fraction): on a short budget it cannot be told apart from run-to-run noise."""
    if isinstance(old, bool) or not isinstance(old, float) or not isinstance(new, float):
        return False
    ratios = [(old, new)] + ([(1 - old, 1 - new)] if 0 < old < 1 and 0 < new < 1 else [])
    return all(a > 0 and b > 0 and max(a / b, b / a) < MIN_STEP for a, b in ratios)


def idle_on_device(constants: Mapping[str, Constant], device: str) -> list[str]:
    """Constants that change nothing on `device`: the GPU-only settings (CUDA_*, COMPILE) on a
    CPU. Searching them there spends experiments on noise, or on a compile that eats the budget."""
    if device.startswith("cuda"):
        return []
    return [name for name in constants if name.startswith("CUDA_") or name == "COMPILE"]


def search_space(
    constants: Mapping[str, Constant], frozen: Iterable[str] = FROZEN
) -> dict[str, BaseDistribution]:
    """name -> Optuna distribution around each searchable constant's current value.

    - int v >= 1: [~v/2, ~2v], at least v-2..v+2, never below 1, on a grid that keeps the
      power-of-two factor of v (step = the largest power of two dividing v, at most v/4):
      32 -> 16, 24, ..., 64, so a head size stays a multiple of 8. 0 -> [0, 2]; v < 0 mirrored.
    - pow2 2**k: the exponent, k-2..k+2 (not below 0).
    - float v > 0: log scale over [v/4, 4v]; a value below 1 stays below 1 (upper bound at most
      1 - (1-v)/4), since most such constants are fractions (betas, momenta, ratios) for which
      1 or more is invalid. 0.0: linear [0, ZERO_FLOAT_HIGH]. v < 0: linear [4v, v/4].
    - bool: both; str with choices named in its comment: those choices.
    - tuples, strs without choices and derived constants are not searched: a tuple's parts
      usually depend on each other in ways the source does not say.
    Frozen names (and any containing SEED) are left out.
    """
    frozen = set(frozen)
    space = {}
    for name, c in constants.items():
        if not c.searchable or name in frozen or "SEED" in name:
            continue
        space[name] = _distribution(c)
    return space


def _distribution(c: Constant) -> BaseDistribution:
    v = c.value
    if c.kind == "bool":
        return CategoricalDistribution([False, True])
    if c.kind == "str":
        return CategoricalDistribution(list(c.choices))
    if c.kind == "pow2":
        k = v.bit_length() - 1
        return IntDistribution(max(0, k - 2), k + 2)
    if c.kind == "int":
        if v == 0:
            return IntDistribution(0, 2)
        low, high, step = _int_range(abs(v))
        if v < 0:
            low, high = -high, -low
        return IntDistribution(low, high, step=step)
    if v > 0:
        high = 4 * v if v >= 1 else min(4 * v, 1 - (1 - v) / 4)
        return FloatDistribution(v / 4, high, log=True)
    if v == 0:
        return FloatDistribution(0.0, ZERO_FLOAT_HIGH)
    return FloatDistribution(4 * v, v / 4)


def _int_range(v: int) -> tuple[int, int, int]:
    """(low, high, step) for a positive int; v is always on the grid."""
    step = 1
    while v % (2 * step) == 0 and 2 * step <= v / 4:
        step *= 2
    low = max(1, min(v - 2, v // 2))
    high = max(v + 2, 2 * v)
    return v - step * ((v - low) // step), v + step * ((high - v) // step), step


def _to_value(c: Constant, param):
    """The constant's value for a sampled parameter, as `apply_changes` will write it."""
    if c.kind == "pow2":
        return 2 ** int(param)
    if c.kind == "float":
        return round_float(param)
    if c.kind == "int":
        return int(param)
    return param


def _to_param(c: Constant, value):
    if c.kind == "pow2":
        if not (isinstance(value, int) and value > 0 and value & (value - 1) == 0):
            return None
        return value.bit_length() - 1
    return value


def _add(study, constants, space, params: Mapping, value: float) -> None:
    """Tell the study one past configuration; values outside today's space are left out (TPE
    models each constant from the trials that have it)."""
    kept = {}
    for name, dist in space.items():
        if name in params:
            param = _to_param(constants[name], params[name])
            if param is not None and _contains(dist, param):
                kept[name] = param
    if kept:
        trial = create_trial(
            state=TrialState.COMPLETE,
            value=value,
            params=kept,
            distributions={name: space[name] for name in kept},
        )
        study.add_trial(trial)


def _told_value(outcome: Outcome, penalty: float | None) -> float | None:
    """The score the study is told for an outcome; None to leave it out."""
    if outcome.status in SCORED and _finite(outcome.val_bpb):
        return outcome.val_bpb
    if outcome.status in FAILED:
        return penalty
    return None


def _contains(dist: BaseDistribution, param) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return any(_same(param, choice) for choice in dist.choices)
    if isinstance(param, bool) or not isinstance(param, int | float):
        return False
    if not dist.low <= param <= dist.high:
        return False
    if isinstance(dist, IntDistribution):
        return param == int(param) and (int(param) - dist.low) % dist.step == 0
    return True


def _key(params: Mapping, space: Iterable[str]) -> tuple:
    """A configuration's identity over the searched names (the ledger may turn tuples into
    lists; ints and equal floats compare equal)."""
    return tuple(_hashable(params.get(name)) for name in space)


def _hashable(value):
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, bool):  # keep True distinct from 1
        return ("bool", value)
    return value


def _same(a, b) -> bool:
    return _hashable(a) == _hashable(b)


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)
