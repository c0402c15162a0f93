"""The built-in, offline researcher: an Optuna sampler over the recipe's UPPER_CASE constants.

Each proposal changes one or two constants of the current best train.py:

1. The search space is centred on the current best (the values in `context.best_source`), so it
   follows the best as it moves. Numbers move by octaves (x/÷ 2 or 4 for a float, x/÷ 2 for an
   int; see `search_space`): in a session of 20 short runs a smaller step is lost in the noise,
   and a learning rate ten times too small has to come back in two or three steps.
2. Which constants change is picked by priority, importance**2 / (1 + times changed): the
   learning rates and the model's size first, each once, as a person tuning a recipe would,
   then the rest (`_pick_weights`). One constant at a time until each has been moved once: a
   pair that loses says nothing about which of the two was wrong. Then one `study.ask` over
   just the picked constants asks the sampler for their new values; the others keep the best's
   values. TPE models each constant independently from every past experiment's value of it,
   whichever other constant changed alongside.
3. Two moves of Hooke and Jeeves' pattern search come before the sampler. After a kept change,
   the same step once more (0.004 -> 0.008 paid off, so 0.016); after a lost single change, the
   same step the other way (0.004 -> 0.008 lost, so 0.002). A direction that lost from the
   current best is not asked for again while anything else is left (`_lost_before`).
4. The study is rebuilt from `context.history` on every call (`study.add_trial` of each outcome's
   full configuration and val_bpb), so the ledger is the only state: a restarted researcher
   learns from everything already tried, and a proposal depends only on (seed, history, best).
5. A configuration already run (a candidate, or a best one was built on) is never proposed; the
   researcher asks again, up to `max_attempts` times, then takes an untried change of one
   constant (else two) from the space itself, at random: TPE's model can sit on the best long
   before the space is used up. None only when every such change was run.

The `random` sampler is the benchmark's baseline: the same space, a uniform pick, no moves of
its own.
"""

import itertools
import math
import re
import warnings
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
from autolab.track.ledger import FAILED_STATUSES

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Constants that describe the machine or the run rather than the model: changing them can only
# add noise (a seed) or change how fast the same computation runs on this host (threads, device).
# Any name containing SEED is frozen as well.
FROZEN = frozenset({"DEVICE", "DTYPE", "NUM_THREADS", "NUM_WORKERS"})
# Finished experiments whose score says something about their configuration.
SCORED = ("keep", "discard")
# Failures of the configuration itself (too big for the budget, diverged into NaN, broke the
# model, FAILED_STATUSES) are told to the study as the worst score seen so far, so TPE learns to
# stay away. An `interrupted` run says nothing about its configuration and teaches the study
# nothing. A `pruned` one (`--prune`) is told as Optuna's own pruned trial (TrialState.PRUNED,
# its dev loss at the point it stopped as the intermediate value): TPE ranks it below every
# complete trial, and pruned ones among themselves by how far they got and their dev loss.
SAMPLERS = ("tpe", "random")
# Scored experiments before TPE models the history (Optuna's default is 10). Experiments cost
# minutes and every proposal is already local to the best, so waiting long buys little: on the
# synthetic objective in tests/test_search.py, 5 reached a clearly better median than 10.
TPE_STARTUP = 5
# Float constant of value 0.0 (weight decay, a final LR fraction): a log scale cannot hold 0, so
# such a constant is searched linearly over [0, ZERO_FLOAT_HIGH]; once the best moves off 0 it
# is searched on a log scale around its new value.
ZERO_FLOAT_HIGH = 0.1
# How sharply the pick prefers the constant of the highest priority (`_pick_weights`).
PICK_SHARPNESS = 4
# The smallest float change TPE may propose, as a ratio: 0.0100 -> 0.0103 spends a 20 s run on
# a difference well inside the noise. Positive floats move on a grid of octaves anyway, so this
# bounds only the linear range of a negative float.
MIN_STEP = 1.15
# A value that failed in DOOMED_AFTER experiments (crash, timeout, invalid), once as their only
# change, and never ran to a score is not proposed again while anything else is left: on that
# hardware and budget it cannot work. An hour of two 1-thread workers on 2 CPU cores tried "turn on
# COMPILE" (compilation outlasts a 10 s budget) 20 times, every one a timeout at twice a
# normal run's wall clock: 6% of the workers' time (docs/scaling.md).
DOOMED_AFTER = 2


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
        # Every configuration run so far: the candidates, and the bests they were built on (the
        # baseline's run carries no params of its own).
        tried = {_key(p, space) for o in context.history for p in (o.params, o.parent_params) if p}
        tried.update(_key(o.params, space) for o in context.in_flight if o.params)
        tried.add(_key(best, space))
        # The random baseline stays naive: it learns nothing from failures either.
        doomed = _doomed(context.history, space) if self.sampler == "tpe" else set()
        if self.sampler == "tpe":
            for move in (_step_further, _step_back):
                step = move(context.history, constants, space, best)
                if step and not _uses(step, doomed) and _key({**best, **step}, space) not in tried:
                    return _proposal(context.best_source, constants, best, step)
        rng = np.random.default_rng([self.seed, len(context.history), len(context.in_flight)])
        study = self._study(context, constants, space, best, seed=int(rng.integers(2**31)))
        names = list(space)
        tries = _times_changed(context.history, names)
        pick = self._pick_weights(names, tries)
        # One constant at a time until each has been moved once: a pair that loses says
        # nothing about which of the two was wrong.
        screening = self.sampler == "tpe" and 0 in tries.values()
        for attempt in range(self.max_attempts):
            # The first half of the attempts keeps to the rules below; past it, anything untried
            # goes: near an optimum every single move may already have lost.
            strict = self.sampler == "tpe" and attempt < self.max_attempts // 2
            most = 1 if screening and strict else min(self.max_changes, len(names))
            k = int(rng.integers(1, most + 1))
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
            lost = strict and _lost_before(context.history, space, best, changes)
            new = _key({**best, **changes}, space) not in tried
            if changes and not lost and not _uses(changes, doomed) and new:
                return _proposal(context.best_source, constants, best, changes)
            # Nothing new there: make another constant likelier, or a sharp pick could keep
            # asking about one whose moves are all used up.
            pick[chosen] /= 4
            pick /= pick.sum()
        # The sampler's model can sit on the best: after ~120 runs on a 21-constant recipe TPE
        # asked only for tried values 100 times while 26 single moves (the far octaves it
        # learned to avoid) were untried, and the session ended "nothing left to try" after
        # 40 minutes of an hour. So ask the space itself before saying so.
        # A doomed value comes last: a failure that was the machine's at the time (a timeout
        # while it was busy) must not end a session that has nothing else left.
        changes = _untried_changes(
            constants, space, best, tried, self.max_changes, rng, avoid=doomed
        ) or _untried_changes(constants, space, best, tried, self.max_changes, rng)
        return _proposal(context.best_source, constants, best, changes) if changes else None

    def _pick_weights(self, names: list[str], tries: Mapping[str, int]) -> np.ndarray:
        """The probability of each constant being among the ones a proposal changes.

        The random baseline picks uniformly. With TPE the pick follows a priority,
        importance**2 / (1 + times changed), sharpened to the 4th power: nearly always the
        constant of the highest priority, at random among equals. So a session first moves
        each learning rate and each size constant once, in a random order, as a person tuning a
        recipe would, before it comes back to any of them or touches the rest. A uniform pick
        over 18 constants left the learning rates and the size untouched for most of a
        20-experiment session (bench/README.md).
        """
        if self.sampler != "tpe":
            return np.full(len(names), 1 / len(names))
        priority = np.array([importance(n) ** 2 / (1 + tries[n]) for n in names])
        weights = priority**PICK_SHARPNESS
        return weights / weights.sum()

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
            # constant_liar: the experiments in flight (RUNNING below) count as bad results,
            # so proposals asked for while others run differ from them (Optuna's answer to
            # parallel workers; experimental in Optuna 5, hence the silenced warning).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(
                    seed=seed, n_startup_trials=TPE_STARTUP, constant_liar=True
                )
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
            elif outcome.params and outcome.status == "pruned" and outcome.pruned:
                seen.add(_key(outcome.params, space))
                point = outcome.pruned
                step = round(100 * point["progress"])  # percent of the budget it reached
                _add(study, constants, space, outcome.params, point["dev_loss"], step)
        # The best is often a baseline or another researcher's change, outside the history's
        # params: it is the strongest evidence there is about where the good values lie.
        if _finite(context.best_val_bpb) and _key(best, space) not in seen:
            _add(study, constants, space, best, context.best_val_bpb)
        for outcome in context.in_flight:
            if outcome.params:
                _add(study, constants, space, outcome.params, None, running=True)
        return study


LEARNING_RATE = re.compile(r"(^|_)LR$|LEARNING_RATE")
# What a constant is, from its name: how much a change to it usually matters. The order a person
# tuning a recipe checks them in: the learning rates and the model's size (a de-tuned recipe
# usually has one of them wrong), then how much data a step sees; schedules, betas and the rest
# last.
IMPORTANCE = (
    (4.0, LEARNING_RATE),
    (4.0, re.compile(r"DEPTH|LAYER|WIDTH|EMBD|DIM|HIDDEN|ASPECT|HEAD|MLP_RATIO")),
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


def _untried_changes(
    constants, space, best: dict, tried: set, most: int, rng, avoid: set = frozenset()
) -> dict | None:
    """A change of one constant not yet run from the best, picked at random; else of two, and
    so on up to `most`; None only when every such change was run. Continuous ranges offer
    their two ends and their middle; the values in `avoid` are not offered."""
    options = {name: [v for v in _choices(constants[name], dist) if not _same(v, best[name])
                      and not _too_small(best[name], v) and (name, _hashable(v)) not in avoid]
               for name, dist in space.items()}  # fmt: skip
    for k in range(1, most + 1):
        untried = []
        for names in itertools.combinations(options, k):
            for picked in itertools.product(*(options[name] for name in names)):
                changes = dict(zip(names, picked, strict=True))
                if _key({**best, **changes}, space) not in tried:
                    untried.append(changes)
        if untried:
            return untried[int(rng.integers(len(untried)))]
    return None


def _choices(c: Constant, dist: BaseDistribution) -> list:
    """The values a constant's distribution offers, as `apply_changes` would write them."""
    if isinstance(dist, CategoricalDistribution):
        return [_to_value(c, choice) for choice in dist.choices]
    if isinstance(dist, IntDistribution):
        return [_to_value(c, i) for i in range(dist.low, dist.high + 1, dist.step)]
    return [_to_value(c, x) for x in (dist.low, (dist.low + dist.high) / 2, dist.high)]


def _step_further(history, constants, space, best) -> dict | None:
    """The pattern move: if the last scored experiment was kept, the same numeric step again,
    from the new best ({} when no constant can step further inside today's space)."""
    # Re-check runs carry the params of the candidate they checked, and the verdict of both.
    scored = _scored(history)
    if not scored or scored[-1].status != "keep":
        return None
    last = scored[-1]
    if not last.parent_params or _key(last.params, space) != _key(best, space):
        return None
    if _rechecked(last, scored, space):  # a win inside the noise: nothing to follow
        return None
    changes = {}
    for name, dist in space.items():
        old, new = last.parent_params.get(name), last.params.get(name)
        value = _repeat_step(constants[name], old, new)
        if value is not None and _in_space(constants[name], dist, value):
            changes[name] = value
    return changes


def _step_back(history, constants, space, best) -> dict | None:
    """The compass move: if the last scored experiment changed one number of the current best
    and lost, the same step the other way (0.004 -> 0.008 lost, so 0.002)."""
    last, name = _last_single_move(history, space, best)
    if last is None or last.status == "keep":
        return None
    c = constants[name]
    value = _repeat_step(c, last.params[name], last.parent_params[name])
    if value is not None and _in_space(c, space[name], value):
        return {name: value}
    return None


def _repeat_step(c: Constant, old, new):
    """The value one more step from `old` to `new` takes `c` to (x new/old; an int <= 0 adds
    the difference); None when there is no step (same value, not a number)."""
    if c.kind not in ("int", "pow2", "float") or not (_is_number(old) and _is_number(new)):
        return None
    if _same(old, new):
        return None
    if old > 0 and new > 0:
        value = new * new / old
        return round_float(value) if c.kind == "float" else int(round(value))
    if c.kind == "int":
        return new + (new - old)
    return None


def _scored(history: list[Outcome]) -> list[Outcome]:
    """The experiments whose result says something about their configuration, in order."""
    return [o for o in history if o.params and o.status in (*SCORED, *FAILED_STATUSES, "pruned")]


def _moved(outcome: Outcome, space) -> list[str]:
    """The names whose value `outcome` changed from its parent's."""
    return [n for n in space if not _same(outcome.params.get(n), outcome.parent_params.get(n))]


def _rechecked(outcome: Outcome, scored: list[Outcome], space) -> bool:
    """Whether `outcome`'s configuration ran more than once: its result was inside the noise."""
    return sum(_key(o.params, space) == _key(outcome.params, space) for o in scored) > 1


def _last_single_move(history, space, best):
    """(the last scored experiment, the one constant it changed) when it changed exactly one
    constant of the current best; (None, None) otherwise, or when its result needed a re-check."""
    scored = _scored(history)
    if not scored or not scored[-1].parent_params:
        return None, None
    last = scored[-1]
    if _key(last.parent_params, space) != _key(best, space) or _rechecked(last, scored, space):
        return None, None
    changed = _moved(last, space)
    return (last, changed[0]) if len(changed) == 1 else (None, None)


def _doomed(history: list[Outcome], space) -> set[tuple]:
    """The (name, value) pairs that cannot work on this hardware and budget: every experiment
    that moved it failed, DOOMED_AFTER or more did, and one of them moved it alone. A failed
    pair alone says nothing about which of its two changes failed."""
    failed, alone, worked = {}, set(), set()
    for o in history:
        if not o.params or not o.parent_params:
            continue
        values = [(name, _hashable(o.params[name])) for name in _moved(o, space)]
        if o.status in FAILED_STATUSES:
            for value in values:
                failed[value] = failed.get(value, 0) + 1
            if len(values) == 1:
                alone.add(values[0])
        elif o.status in (*SCORED, "pruned"):
            worked.update(values)
    return {v for v, n in failed.items() if n >= DOOMED_AFTER and v in alone and v not in worked}


def _uses(changes: Mapping, doomed: set[tuple]) -> bool:
    """Whether `changes` sets a constant to a value that cannot work (`_doomed`)."""
    return any((name, _hashable(value)) in doomed for name, value in changes.items())


def _lost_before(history, space, best, changes) -> bool:
    """Whether moving a number of `changes` this way from the current best already lost, as the
    only change of an experiment: the same direction is not tried twice from the same place."""
    for o in history:
        if o.status == "keep" or not o.params or not o.parent_params:
            continue
        if _key(o.parent_params, space) != _key(best, space):
            continue
        moved = _moved(o, space)
        if len(moved) != 1 or moved[0] not in changes:
            continue
        name = moved[0]
        before, tried, now = o.parent_params[name], o.params[name], changes[name]
        if all(_is_number(x) for x in (before, tried, now)):
            if (tried - before) * (now - before) > 0:
                return True
    return False


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _in_space(c: Constant, dist: BaseDistribution, value) -> bool:
    """Whether `value` lies inside today's space for `c` (between grid values counts)."""
    grid = _grid(c)
    if grid:
        return grid[0] <= value <= grid[-1]
    param = _to_param(c, value)
    return param is not None and _contains(dist, param)


def _too_small(old, new) -> bool:
    """A float change of less than MIN_STEP either way (of the value, or of 1 - value for a
    fraction): on a short budget it cannot be told apart from run-to-run noise."""
    if isinstance(old, bool) or not isinstance(old, float) or not isinstance(new, float):
        return False
    ratios = [(old, new)] + ([(1 - old, 1 - new)] if 0 < old < 1 and 0 < new < 1 else [])
    return all(a > 0 and b > 0 and max(a / b, b / a) < MIN_STEP for a, b in ratios)


def search_space(
    constants: Mapping[str, Constant], frozen: Iterable[str] = FROZEN
) -> dict[str, BaseDistribution]:
    """name -> Optuna distribution around each searchable constant's current value.

    - int v >= 1 and float v > 0: an index into `_grid(c)`, the values v/4, v/2, v, 2v, 4v
      (ints: v/2, v, 2v, and v +- 1 or 2 while small). 0 -> [0, 2]; an int v < 0: [2v, v/2].
    - pow2 2**k: the exponent, k-2..k+2 (not below 0).
    - float 0.0: linear [0, ZERO_FLOAT_HIGH]. v < 0: linear [4v, v/4].
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
    grid = _grid(c)
    if grid:
        return IntDistribution(0, len(grid) - 1)
    if c.kind == "int":
        if v == 0:
            return IntDistribution(0, 2)
        low, high, step = _int_range(abs(v))
        return IntDistribution(-high, -low, step=step)
    if v == 0:
        return FloatDistribution(0.0, ZERO_FLOAT_HIGH)
    return FloatDistribution(4 * v, v / 4)


def _grid(c: Constant) -> tuple | None:
    """The values a positive int or float may take, ascending, v among them: octaves around v,
    v/4, v/2, 2v and 4v for a float, v/2 and 2v for an int (plus v +- 1 and +- 2 for a small
    int). None for other constants.

    A fraction (a float below 1 that is not a learning rate: a beta, a momentum, a ratio) moves
    by the same factors in whichever of v and 1 - v is nearer its bound, so 0.95 goes to 0.9 or
    0.975 and stays below 1, and 0.02 goes to 0.01 or 0.04. Ints keep their power-of-two factor
    (see `_int_range`): 32 -> 16 or 64, 12 -> 6 or 24.
    """
    v = c.value
    if isinstance(v, bool) or c.kind not in ("int", "float") or not v > 0:
        return None
    values = {v}
    if c.kind == "float":
        fraction = v < 1 and not LEARNING_RATE.search(c.name)
        for f in (2, 4):
            up, down = v * f, v / f
            if fraction:
                up, down = min(up, 1 - (1 - v) / f), max(down, 1 - (1 - v) * f)
            values |= {round_float(up), round_float(down)}
    else:
        _, _, step = _int_range(v)
        for f in (0.5, 2):
            values.add(max(step, step * round(v * f / step)))
        if step == 1:
            values |= {x for x in (v - 2, v - 1, v + 1, v + 2) if x >= 1}
    return tuple(sorted(values))


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
    grid = _grid(c)
    if grid:
        return grid[int(param)]
    if c.kind == "pow2":
        return 2 ** int(param)
    if c.kind == "float":
        return round_float(param)
    if c.kind == "int":
        return int(param)
    return param


def _to_param(c: Constant, value):
    """The sampler's parameter for a value of `c` (None when it has none: a grid value only)."""
    grid = _grid(c)
    if grid:
        if not _is_number(value):
            return None
        return next((i for i, g in enumerate(grid) if _near(value, g)), None)
    if c.kind == "pow2":
        if not (isinstance(value, int) and value > 0 and value & (value - 1) == 0):
            return None
        return value.bit_length() - 1
    return value


def _near(x: float, g: float) -> bool:
    """Whether x is grid value g, to the 3 significant digits floats are written with."""
    return x == g or (g != 0 and abs(x - g) / abs(g) < 0.01)


def _times_changed(history: list[Outcome], names: Iterable[str]) -> dict[str, int]:
    """How many experiments changed each constant from their parent's value."""
    counts = dict.fromkeys(names, 0)
    for o in history:
        if o.params and o.parent_params:
            for name in counts:
                if name in o.params and not _same(o.params[name], o.parent_params.get(name)):
                    counts[name] += 1
    return counts


def _add(study, constants, space, params: Mapping, value: float | None,
         pruned_at: int | None = None, running: bool = False):  # fmt: skip
    """Tell the study one past configuration; values outside today's space are left out (TPE
    models each constant from the trials that have it). `pruned_at`: it was pruned at that
    step (percent of the budget), `value` its dev loss there. `running`: in flight, no value."""
    kept = {}
    for name, dist in space.items():
        if name in params:
            param = _to_param(constants[name], params[name])
            if param is not None and _contains(dist, param):
                kept[name] = param
    if kept:
        state = TrialState.COMPLETE if pruned_at is None else TrialState.PRUNED
        trial = create_trial(
            state=TrialState.RUNNING if running else state,
            value=value if pruned_at is None and not running else None,
            params=kept,
            distributions={name: space[name] for name in kept},
            intermediate_values=None if pruned_at is None else {pruned_at: value},
        )
        study.add_trial(trial)


def _told_value(outcome: Outcome, penalty: float | None) -> float | None:
    """The score the study is told for an outcome; None to leave it out."""
    if outcome.status in SCORED and _finite(outcome.val_bpb):
        return outcome.val_bpb
    if outcome.status in FAILED_STATUSES:
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
