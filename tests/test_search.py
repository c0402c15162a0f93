import ast
import json
import math
import statistics
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from autolab.research.constants import parse_constants, values
from autolab.research.proposal import Outcome, ResearchContext
from autolab.research.search import (
    DOOMED_AFTER,
    SearchResearcher,
    _doomed,
    _lost_before,
    _step_back,
    _step_further,
    _to_value,
    _too_small,
    importance,
    search_space,
)

RECIPE = '''"""A recipe."""

from autolab.harness import Run

LR = 0.04  # learning rate
DEPTH = 3  # number of blocks
WARMUP_RATIO = 0.1  # share of the budget spent warming up
BATCH_SIZE = 2**5  # sequences per step
USE_BIAS = False  # linear layers with a bias
ACTIVATION = "relu2"  # one of: "relu2", "gelu", "silu"
WINDOW = (64, 128)  # a tuple: not searched
SEED = 1337  # frozen
NUM_THREADS = 2  # frozen
WIDTH = DEPTH * 64  # derived

run = Run()
'''


def objective(params: dict) -> float:
    """Synthetic val_bpb: best at LR = 0.01 and DEPTH = 6; the rest does not matter."""
    return 1.0 + math.log2(params["LR"] / 0.01) ** 2 + (params["DEPTH"] - 6) ** 2 / 10


def context(source: str, history: list[Outcome], best: float | None) -> ResearchContext:
    return ResearchContext(Path("."), source, "", list(history), best_val_bpb=best)


def research_loop(researcher: SearchResearcher, n: int, source: str = RECIPE):
    """The keep/discard loop on the synthetic objective: (best val_bpb, history, proposals)."""
    best = objective(values(parse_constants(source)))
    history, proposals = [], []
    for number in range(n):
        proposal = researcher.propose(context(source, history, best))
        if proposal is None:
            break
        proposals.append(proposal)
        score = objective(proposal.params)
        status = "keep" if score < best else "discard"
        parent = values(parse_constants(source))
        history.append(
            Outcome(number, proposal.description, status, score, proposal.params, "", parent)
        )
        if status == "keep":
            best, source = score, proposal.source
    return best, history, proposals


def grid(source: str, name: str) -> list:
    """The values the search space allows for a numeric constant, in order."""
    constants = parse_constants(source)
    dist = search_space(constants)[name]
    return [_to_value(constants[name], i) for i in range(dist.low, dist.high + 1, dist.step)]


def test_search_space_is_centred_on_the_best():
    space = search_space(parse_constants(RECIPE))
    assert list(space) == ["LR", "DEPTH", "WARMUP_RATIO", "BATCH_SIZE", "USE_BIAS", "ACTIVATION"]
    # Numbers move by octaves: a float x/÷ 2 or 4, an int x/÷ 2 (and ± 1 or 2 while small).
    assert grid(RECIPE, "LR") == [0.01, 0.02, 0.04, 0.08, 0.16]
    assert grid(RECIPE, "DEPTH") == [1, 2, 3, 4, 5, 6]
    # A fraction stays below 1: near 1 it moves in 1 - v (0.95 -> 0.9 or 0.975).
    assert grid(RECIPE, "WARMUP_RATIO") == [0.025, 0.05, 0.1, 0.2, 0.4]
    assert space["BATCH_SIZE"] == IntDistribution(3, 7)  # the exponent of 2**5
    assert space["USE_BIAS"] == CategoricalDistribution([False, True])
    assert space["ACTIVATION"] == CategoricalDistribution(["relu2", "gelu", "silu"])
    wide = "A = 32\nB = 0.0\nC = 0.95\nD = 0\nE = 1\nEMBEDDING_LR = 0.6\nF = -2\n"
    assert grid(wide, "A") == [16, 32, 64]
    assert search_space(parse_constants(wide))["B"] == FloatDistribution(0.0, 0.1)  # linear
    assert grid(wide, "C") == [0.8, 0.9, 0.95, 0.975, 0.988]
    assert search_space(parse_constants(wide))["D"] == IntDistribution(0, 2)
    assert grid(wide, "E") == [1, 2, 3]
    assert grid(wide, "EMBEDDING_LR") == [0.15, 0.3, 0.6, 1.2, 2.4]  # a rate is no fraction
    assert search_space(parse_constants(wide))["F"] == IntDistribution(-4, -1)


def test_proposals_are_valid_sources_with_one_or_two_changes():
    _, history, proposals = research_loop(SearchResearcher(seed=3), 12)
    assert len(proposals) == 12
    for proposal in proposals:
        ast.parse(proposal.source)
        new = values(parse_constants(proposal.source))
        assert new == {**values(parse_constants(RECIPE)), **new}  # no constant appeared or left
        assert set(proposal.params) == set(search_space(parse_constants(RECIPE)))
        assert {k: new[k] for k in proposal.params} == proposal.params
        assert new["SEED"] == 1337 and new["NUM_THREADS"] == 2 and new["WINDOW"] == (64, 128)
        assert proposal.description.count(" and ") <= 1
    # Each proposal differs from the best it was built on in one or two constants.
    best = values(parse_constants(RECIPE))
    for outcome, proposal in zip(history, proposals, strict=True):
        changed = [k for k, v in proposal.params.items() if v != best[k]]
        assert 1 <= len(changed) <= 2, proposal.description
        if outcome.status == "keep":
            best = values(parse_constants(proposal.source))


def test_the_real_recipe_gets_a_valid_proposal():
    source = (Path(__file__).parents[1] / "autolab" / "recipes" / "gpt.py").read_text()
    proposal = SearchResearcher(seed=0).propose(context(source, [], None))
    ast.parse(proposal.source)
    assert proposal.description and proposal.source != source
    assert "NUM_THREADS" not in proposal.params


def test_never_repeats_a_configuration():
    _, history, proposals = research_loop(SearchResearcher(seed=1), 30)
    assert len(proposals) == 30
    configs = [tuple(sorted(p.params.items())) for p in proposals]
    assert len(set(configs)) == len(configs)
    searched = search_space(parse_constants(RECIPE))
    baseline = tuple(values(parse_constants(RECIPE))[k] for k in searched)
    assert baseline not in {tuple(p.params[k] for k in searched) for p in proposals}


def test_tpe_learns_better_than_random_sampling():
    def median_best(sampler: str) -> float:
        return statistics.median(
            research_loop(SearchResearcher(seed=seed, sampler=sampler), 8)[0] for seed in range(5)
        )

    tpe, random = median_best("tpe"), median_best("random")
    assert tpe < random
    assert tpe < 1.2  # from 5.9 at the start to within 0.2 of the optimum (1.0)


def test_deterministic_for_a_seed_and_history():
    a = research_loop(SearchResearcher(seed=7), 12)[2]
    b = research_loop(SearchResearcher(seed=7), 12)[2]
    c = research_loop(SearchResearcher(seed=8), 12)[2]
    assert [p.source for p in a] == [p.source for p in b]
    assert [p.source for p in a] != [p.source for p in c]


def test_history_replay_after_a_restart():
    best, history, proposals = research_loop(SearchResearcher(seed=2), 15)
    kept = [p.source for p, o in zip(proposals, history, strict=True) if o.status == "keep"]
    source = kept[-1] if kept else RECIPE
    # The history as a ledger hands it back: params through JSON, a crash with no score.
    history = [
        Outcome(o.number, o.description, o.status, o.val_bpb, json.loads(json.dumps(o.params)))
        for o in history
    ]
    history.append(Outcome(15, "crashed", "crash", None, dict(history[0].params), "OOM"))
    tried = {tuple(sorted(o.params.items())) for o in history}
    fresh = SearchResearcher(seed=2)
    for extra in range(10):
        proposal = fresh.propose(context(source, history, best))
        config = tuple(sorted(proposal.params.items()))
        assert config not in tried
        tried.add(config)
        history.append(Outcome(16 + extra, proposal.description, "discard", 9.0, proposal.params))
    # A proposal is a function of (seed, history, best): a third researcher agrees.
    again = SearchResearcher(seed=2).propose(context(source, history, best))
    assert again.source == fresh.propose(context(source, history, best)).source


def test_failed_and_interrupted_outcomes_are_never_reproposed():
    source = "FLAG = True  # a switch\nMODE = 'a'  # choices: a, b\n"
    researcher = SearchResearcher(seed=0)
    history = []
    statuses = ["crash", "timeout", "invalid", "interrupted"]
    for number, status in enumerate(statuses):
        proposal = researcher.propose(context(source, history, 1.0))
        if proposal is None:
            break
        history.append(Outcome(number, proposal.description, status, None, proposal.params))
    # FLAG x MODE has four configurations; the best is one of them, so three are left to try.
    assert len(history) == 3
    assert researcher.propose(context(source, history, 1.0)) is None


def test_exhausted_space_returns_none():
    source = "USE_BIAS = False  # the only knob\n"
    researcher = SearchResearcher(seed=0)
    proposal = researcher.propose(context(source, [], 1.0))
    assert proposal.description == "turn on USE_BIAS"
    assert proposal.source == "USE_BIAS = True  # the only knob\n"
    history = [Outcome(0, proposal.description, "discard", 1.1, proposal.params)]
    assert researcher.propose(context(source, history, 1.0)) is None
    assert researcher.propose(context("SEED = 1\n", [], None)) is None


def test_untried_moves_are_found_when_the_sampler_finds_none():
    """TPE's model can sit on the best while far moves are untried (a real hour-long session
    ended "nothing left to try" with 26 single moves untried). With no sampler attempts at all
    the researcher still walks the space: every single move, then the pairs, then None."""
    researcher = SearchResearcher(seed=0, max_attempts=0)
    source = "FLAG = True  # a switch\nMODE = 'a'  # choices: a, b, c\n"
    history, changed = [], []
    while (proposal := researcher.propose(context(source, history, 1.0))) is not None:
        changed.append(sum(v != {"FLAG": True, "MODE": "a"}[k] for k, v in proposal.params.items()))
        history.append(Outcome(len(history), proposal.description, "discard", 1.1, proposal.params))
    # FLAG off, MODE b, MODE c; then the two pairs; the best itself is never proposed.
    assert changed == [1, 1, 1, 2, 2]
    assert len({tuple(sorted(o.params.items())) for o in history}) == 5


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="sampler"):
        SearchResearcher(sampler="grid")
    with pytest.raises(ValueError, match="max_changes"):
        SearchResearcher(max_changes=0)
    one = research_loop(SearchResearcher(seed=0, max_changes=1), 8)[2]
    assert all(" and " not in p.description for p in one)


def test_a_kept_step_is_taken_once_more():
    """Hooke and Jeeves' pattern move: LR 0.04 -> 0.02 was kept, so 0.02 -> 0.01 comes next."""
    parent = values(parse_constants(RECIPE))
    kept_source = RECIPE.replace("LR = 0.04", "LR = 0.02")
    kept = values(parse_constants(kept_source))
    history = [Outcome(1, "reduce LR from 0.04 to 0.02", "keep", 2.0, kept, "", parent)]
    proposal = SearchResearcher(seed=0).propose(context(kept_source, history, 2.0))
    assert proposal.description == "reduce LR from 0.02 to 0.01"
    assert "LR = 0.01  # learning rate" in proposal.source
    # After a discard there is nothing to continue: the sampler proposes as usual.
    constants = parse_constants(kept_source)
    space = search_space(constants)
    best = {name: constants[name].value for name in space}
    assert _step_further(history, constants, space, best) == {"LR": 0.01}
    history.append(Outcome(2, proposal.description, "discard", 2.5, proposal.params, "", kept))
    assert _step_further(history, constants, space, best) is None
    # The random baseline stays pure: no pattern moves.
    random = SearchResearcher(seed=0, sampler="random")
    assert random.propose(context(kept_source, history[:1], 2.0)).params["LR"] != 0.01


def test_importance_puts_learning_rates_and_size_first():
    assert importance("MATRIX_LR") == importance("DEPTH") > importance("BATCH_SIZE")
    assert importance("LEARNING_RATE") == importance("LR") == importance("EMBEDDING_LR")
    assert importance("N_EMBD") == importance("HEAD_DIM") == importance("N_HIDDEN")
    assert importance("WEIGHT_DECAY") == importance("ADAM_BETA2") == 1.0


def test_no_pattern_move_after_a_win_that_needed_a_re_check():
    parent = values(parse_constants(RECIPE))
    kept_source = RECIPE.replace("LR = 0.04", "LR = 0.02")
    kept = values(parse_constants(kept_source))
    constants = parse_constants(kept_source)
    space = search_space(constants)
    best = {name: constants[name].value for name in space}
    history = [
        Outcome(1, "reduce LR from 0.04 to 0.02", "keep", 2.0, kept, "", parent),
        Outcome(2, "re-check of exp 1 (seed 7)", "keep", 2.01, kept, "", parent),
    ]
    assert _step_further(history, constants, space, best) is None


def test_tpe_proposes_no_float_change_below_the_minimum_step():
    assert _too_small(0.01, 0.0103) and not _too_small(0.01, 0.012)
    assert not _too_small(0.95, 0.96)  # 1 - beta moves by 25%: a real change
    assert not _too_small(4, 4) and not _too_small(0.0, 0.01)
    _, history, _ = research_loop(SearchResearcher(seed=3), 25)
    for outcome in history:
        lr = outcome.params["LR"]
        parent_lr = outcome.parent_params["LR"]
        assert lr == parent_lr or max(lr / parent_lr, parent_lr / lr) >= 1.15 - 1e-9


def test_a_lost_step_is_tried_the_other_way_and_never_again():
    """The compass move: LR 0.04 -> 0.08 lost, so 0.02 comes next, and up is not tried again
    from 0.04 while other moves are left."""
    parent = values(parse_constants(RECIPE))
    up = {**parent, "LR": 0.08}
    history = [Outcome(1, "increase LR from 0.04 to 0.08", "discard", 9.0, up, "", parent)]
    proposal = SearchResearcher(seed=0).propose(context(RECIPE, history, 2.0))
    assert proposal.description == "reduce LR from 0.04 to 0.02"
    constants = parse_constants(RECIPE)
    space = search_space(constants)
    assert _step_back(history, constants, space, parent) == {"LR": 0.02}
    assert _lost_before(history, space, parent, {"LR": 0.16})
    assert not _lost_before(history, space, parent, {"LR": 0.01})
    # From another best the same move is new again.
    assert not _lost_before(history, space, {**parent, "DEPTH": 4}, {"LR": 0.16})
    # A pair that lost says nothing about either of its changes.
    pair = {**parent, "LR": 0.08, "DEPTH": 4}
    history = [Outcome(1, "a pair", "discard", 9.0, pair, "", parent)]
    assert _step_back(history, constants, space, parent) is None
    assert not _lost_before(history, space, parent, {"LR": 0.16})


def test_a_value_that_only_ever_failed_is_not_proposed_again():
    """COMPILE on 2 CPU cores outlasts a 10 s budget: an hour of two workers tried it 20 times,
    alone and in pairs, each a timeout at twice a normal run's cost. Here USE_BIAS = True always
    times out; once it failed twice, once alone, no proposal sets it again, from any best."""
    researcher = SearchResearcher(seed=0)
    source, best = RECIPE, objective(values(parse_constants(RECIPE)))
    history, failures, alone = [], 0, 0
    for number in range(80):
        proposal = researcher.propose(context(source, history, best))
        parent = values(parse_constants(source))
        if proposal.params["USE_BIAS"]:
            assert failures < DOOMED_AFTER or not alone, f"proposed again at {number}"
            failures += 1
            alone += sum(v != parent[k] for k, v in proposal.params.items()) == 1
            description = proposal.description
            history.append(
                Outcome(number, description, "timeout", None, proposal.params, "", parent)
            )
            continue
        score = objective(proposal.params)
        status = "keep" if score < best else "discard"
        history.append(Outcome(number, "", status, score, proposal.params, "", parent))
        if status == "keep":
            best, source = score, proposal.source
    assert failures >= DOOMED_AFTER and alone  # it was tried, and then left alone


def test_only_a_value_that_failed_alone_and_never_scored_is_doomed():
    constants = parse_constants(RECIPE)
    space = search_space(constants)
    parent = values(constants)
    bias, gelu = {**parent, "USE_BIAS": True}, {**parent, "ACTIVATION": "gelu"}
    pair = {**parent, "USE_BIAS": True, "ACTIVATION": "gelu"}

    def run(status, params):
        return Outcome(0, "", status, None, params, "", parent)

    assert _doomed([run("timeout", bias), run("crash", pair)], space) == {
        ("USE_BIAS", ("bool", True))  # ACTIVATION = "gelu" never failed alone: which one?
    }
    assert not _doomed([run("timeout", bias)], space)  # once may be the machine's bad moment
    assert not _doomed([run("timeout", pair), run("crash", pair)], space)
    assert not _doomed([run("timeout", bias), run("crash", bias), run("discard", pair)], space)
    assert not _doomed([run("interrupted", gelu), run("interrupted", gelu)], space)


def test_learning_rates_and_size_are_moved_first_one_at_a_time():
    source = "A = 0.5  # a\nB = 3  # b\nLR = 0.01  # lr\nDEPTH = 4  # depth\nC = True  # c\n"
    researcher = SearchResearcher(seed=0)
    history, moved = [], []
    parent = values(parse_constants(source))
    for number in range(4):
        proposal = researcher.propose(context(source, history, 1.0))
        changed = [k for k, v in proposal.params.items() if v != parent[k]]
        moved.append(changed)
        history.append(Outcome(number, "", "discard", 2.0, proposal.params, "", parent))
    assert all(len(names) == 1 for names in moved)  # one at a time while screening
    # Each lost step is tried the other way, then the next of the two comes.
    assert {names[0] for names in moved} == {"LR", "DEPTH"}
