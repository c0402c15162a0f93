"""The what-mattered view: each scored experiment's constants against its score, and which
constants the score depended on most.

The score is the standings' (`track.standings`), never recomputed here. The constants are read
from train.py at each experiment's commit (`params.ConstantsAt`). A constant is shown when it
took two values or more among the scored experiments. Re-checks are left out: their run is
already folded into the score of the candidate they re-ran.

Importance is Optuna's PED-ANOVA (`optuna.importance.PedAnovaImportanceEvaluator`) over the
experiments as completed trials, minimising the score: how much each constant's value tells
the best tenth of the experiments from the rest. Optuna's fANOVA evaluator would need
scikit-learn, which autolab does not depend on.
"""

import math
import warnings

from autolab.dashboard.params import ConstantsAt
from autolab.research.constants import Constant
from autolab.track.ledger import ExperimentView
from autolab.track.standings import Standings

MIN_TRIALS = 5  # scored experiments before an importance estimate is worth showing
NUMERIC_KINDS = ("int", "pow2", "float")
LOG_SPAN = 8.0  # a positive numeric constant whose values span this factor gets a log axis


def mattered(views: list[ExperimentView], standings: Standings, constants_at: ConstantsAt) -> dict:
    trials = []
    for view in views:
        row = standings.row(view.number)
        if view.kind == "recheck" or row is None or row.score is None:
            continue
        constants = constants_at(view.commit_sha)
        if constants is None:
            continue
        trials.append((view, row.score, constants))
    varied = _varied(trials)
    names = [c["name"] for c in varied]
    rows = [
        {
            "number": view.number,
            "description": view.description,
            "kind": view.kind,
            "status": view.status,
            "score": score,
            "params": {n: constants[n].value for n in names if _usable(constants.get(n))},
        }
        for view, score, constants in trials
    ]
    with_params = [r for r in rows if r["params"]]
    needed = max(0, MIN_TRIALS - len(with_params))
    importance, note = None, ""
    if not varied:
        note = "no constant has taken two values among the scored experiments yet"
    elif needed:
        plural = "s" if needed > 1 else ""
        note = f"{needed} more scored experiment{plural} before an importance estimate"
    else:
        importance, note = _importance(with_params, varied)
    return {
        "trials": rows,
        "constants": varied,
        "importance": importance,
        "method": "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator)",
        "min_trials": MIN_TRIALS,
        "needed": needed,
        "note": note,
    }


def _usable(c: Constant | None) -> bool:
    return c is not None and c.searchable


def _varied(trials) -> list[dict]:
    """The searchable constants with two values or more, in the file's order, each with what
    the page needs to draw its axis."""
    order = list(dict.fromkeys(n for _, _, constants in trials for n in constants))
    varied = []
    for name in order:
        found = [constants[name] for _, _, constants in trials if _usable(constants.get(name))]
        values = list(dict.fromkeys(c.value for c in found))
        if len(values) < 2:
            continue
        numeric = all(c.kind in NUMERIC_KINDS for c in found)
        lo, hi = (min(values), max(values)) if numeric else (None, None)
        log = numeric and lo > 0 and (found[0].kind == "pow2" or hi / lo >= LOG_SPAN)
        varied.append({
            "name": name,
            "numeric": numeric,
            "log": bool(log),
            "integer": numeric and all(c.kind in ("int", "pow2") for c in found),
            "values": sorted(values, key=_order),
        })  # fmt: skip
    return varied


def _order(value) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def _importance(rows: list[dict], varied: list[dict]) -> tuple[list[dict] | None, str]:
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.trial import create_trial

    dists = {}
    for c in varied:
        lo, hi = c["values"][0], c["values"][-1]
        if not c["numeric"]:
            dists[c["name"]] = CategoricalDistribution(c["values"])
        elif c["integer"]:
            dists[c["name"]] = IntDistribution(int(lo), int(hi), log=c["log"])
        else:
            dists[c["name"]] = FloatDistribution(float(lo), float(hi), log=c["log"])
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize")
    for r in rows:
        if not math.isfinite(r["score"]):
            continue
        params = {n: v for n, v in r["params"].items() if n in dists}
        study.add_trial(create_trial(value=r["score"], params=params,
                                     distributions={n: dists[n] for n in params}))  # fmt: skip
    with warnings.catch_warnings():  # optuna marks the evaluator experimental
        warnings.simplefilter("ignore")
        found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    values = [{"name": n, "importance": float(v)} for n, v in found.items()]
    return values, f"over {len(study.trials)} scored experiments"
