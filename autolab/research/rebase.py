"""Re-basing a change onto a newer best: what `research --workers N` does with a stale win.

A proposal is a change to the best train.py of its time (its parent). When it wins but another
experiment was kept meanwhile, its change is applied again to the new best: the constants it
changed, set to its values. That is mechanical only for a change of constants; anything else
(code an agent rewrote) or a constant the new best moved too no longer applies, and says why.
"""

from autolab.research.constants import apply_changes, parse_constants, values


def constant_changes(parent_source: str, source: str) -> dict | None:
    """The constants `source` sets differently from `parent_source`; None when `source`
    differs in anything else (or either does not parse)."""
    try:
        old = values(parse_constants(parent_source))
        new = values(parse_constants(source))
        changes = {k: v for k, v in new.items() if k not in old or old[k] != v}
        if set(old) - set(new) or apply_changes(parent_source, changes) != source:
            return None
    except (SyntaxError, ValueError, KeyError):
        return None
    return changes


def rebase(parent_source: str, source: str, best_source: str) -> tuple[str | None, str]:
    """(the change applied to `best_source`, "") or (None, why it no longer applies)."""
    changes = constant_changes(parent_source, source)
    if changes is None:
        return None, "it changes more than constants, which do not re-base mechanically"
    old = values(parse_constants(parent_source))
    best = values(parse_constants(best_source))
    moved = sorted(k for k in changes
                   if k in best and best[k] != old.get(k) and best[k] != changes[k])  # fmt: skip
    if moved:
        return None, f"the new best changed {', '.join(moved)} as well"
    try:
        rebased = apply_changes(best_source, changes)
    except (SyntaxError, ValueError, KeyError) as err:
        return None, f"its constants do not apply to the new best ({err})"
    if rebased == best_source:
        return None, "the new best already has it"
    return rebased, ""


def rebased_description(description: str, number: int, moved: str) -> str:
    """A re-based run's description; `unrun_rebases` finds the runs by it."""
    return f"{description} (exp {number} re-based on {moved})"


def rebase_marker(number: int) -> str:
    return f"(exp {number} re-based on "


def params_of(source: str, params: dict | None) -> dict | None:
    """A re-based change's configuration, over the names its proposal gave (search's)."""
    if not params:
        return None
    now = values(parse_constants(source))
    return {name: now.get(name, value) for name, value in params.items()}
