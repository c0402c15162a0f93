"""Turn an agent's reply into a new train.py, and check that the result is still a recipe.

The reply format (see prompt.REPLY_FORMAT): a first line `DESCRIPTION: <one line>`, then either
one or more search/replace blocks (the format aider popularised) or the whole new file in one
```python fenced block. Every failure is an `EditError` with a one-line message that can be
quoted back to the agent as it stands.
"""

import ast
import re
from dataclasses import dataclass

HARNESS_MODULE = "autolab.harness"
MAX_DESCRIPTION_CHARS = 200


class EditError(ValueError):
    """A reply that cannot be applied, or a train.py that is not a valid recipe; one line."""


class SkippedProposal(Exception):
    """A researcher tried and produced nothing worth running; the loop records a skip event.

    Raised from `propose` (returning None would mean "nothing more to try"). `usage` holds the
    tokens and cost already spent, which still count.
    """

    def __init__(self, reason: str, usage=None):
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


@dataclass
class Edit:
    search: str
    replace: str


_DESCRIPTION = re.compile(r"^[\s*_#>`]*DESCRIPTION[\s*_`]*:[\s*_`]*(.*)$", re.I | re.M)
_BLOCK = re.compile(
    r"^<{5,9} ?SEARCH[ \t]*\n(.*?)^={5,9}[ \t]*\n(.*?)^>{5,9} ?REPLACE[ \t]*$", re.M | re.S
)
_BLOCK_START = re.compile(r"^<{5,9} ?SEARCH[ \t]*$", re.M)
_FENCE = re.compile(r"^```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def parse_reply(text: str) -> tuple[str, list[Edit] | None, str | None]:
    """(description, edits, whole_file): exactly one of edits and whole_file is not None.

    With several fenced blocks and no SEARCH blocks, the longest one is taken as the file;
    validate_train_py rejects it if it is only a snippet.
    """
    match = _DESCRIPTION.search(text)
    description = match.group(1).strip(" *_`") if match else ""
    if not description:
        raise EditError("the reply has no `DESCRIPTION: <one line>` line")
    description = description[:MAX_DESCRIPTION_CHARS]

    starts = len(_BLOCK_START.findall(text))
    if starts:
        blocks = list(_BLOCK.finditer(text))
        if len(blocks) != starts:
            number = _first_malformed_block(text, blocks)
            raise EditError(
                f"SEARCH/REPLACE block {number} is malformed: it needs `<<<<<<< SEARCH`, "
                "`=======` and `>>>>>>> REPLACE` lines, each on a line of its own"
            )
        edits = [Edit(search=m.group(1), replace=m.group(2)) for m in blocks]
        return description, edits, None

    fences = _FENCE.findall(text)
    if fences:
        return description, None, max(fences, key=len)
    raise EditError("the reply has neither SEARCH/REPLACE blocks nor a ```python block")


def _first_malformed_block(text: str, blocks: list[re.Match]) -> int:
    complete = {m.start() for m in blocks}
    for number, start in enumerate(_BLOCK_START.finditer(text), start=1):
        if start.start() not in complete:
            return number
    return len(blocks) + 1


def apply_edits(source: str, edits: list[Edit]) -> str:
    """Apply each block in order; each SEARCH must match exactly one place.

    An exact match is tried first; failing that, lines are compared with trailing whitespace
    ignored (models often drop or add it).
    """
    for number, edit in enumerate(edits, start=1):
        if not edit.search.strip():
            raise EditError(f"SEARCH block {number} is empty: quote the lines to replace")
        count = source.count(edit.search)
        if count == 1:
            source = source.replace(edit.search, edit.replace)
            continue
        if count > 1:
            raise _ambiguous(number, count)
        source = _apply_loose(source, edit, number)
    return source


def _apply_loose(source: str, edit: Edit, number: int) -> str:
    lines = source.splitlines(keepends=True)
    wanted = [line.rstrip() for line in edit.search.splitlines()]
    stripped = [line.rstrip() for line in lines]
    n = len(wanted)
    starts = [i for i in range(len(lines) - n + 1) if stripped[i : i + n] == wanted]
    if not starts:
        first = next(line for line in wanted if line.strip()).strip()
        raise EditError(
            f"SEARCH block {number} does not match train.py (its first line: {first[:80]!r}); "
            "copy the lines exactly from the current train.py"
        )
    if len(starts) > 1:
        raise _ambiguous(number, len(starts))
    i = starts[0]
    replace = edit.replace
    if replace and not replace.endswith("\n"):
        replace += "\n"
    return "".join(lines[:i]) + replace + "".join(lines[i + n :])


def _ambiguous(number: int, count: int) -> EditError:
    return EditError(
        f"SEARCH block {number} matches {count} places in train.py; "
        "include more surrounding lines so it matches exactly one"
    )


def validate_train_py(source: str, original: str | None = None) -> None:
    """Raise EditError unless `source` parses, imports the harness and calls `.finish(`.

    With `original`, a source that differs from it only in whitespace is rejected as unchanged.
    """
    if original is not None and same_source(source, original):
        raise EditError("train.py is unchanged")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise EditError(f"train.py does not parse: line {err.lineno}: {err.msg}") from err
    if not any(_imports_harness(node) for node in ast.walk(tree)):
        raise EditError(f"train.py no longer imports the harness (`from {HARNESS_MODULE} ...`)")
    if not any(_calls_finish(node) for node in ast.walk(tree)):
        raise EditError("train.py no longer calls `run.finish(model, ...)`")


def same_source(a: str, b: str) -> bool:
    """True when a and b differ at most in trailing whitespace and blank lines at the ends."""
    return _normalized(a) == _normalized(b)


def _normalized(source: str) -> list[str]:
    return [line.rstrip() for line in source.strip().splitlines()]


def _is_harness(module: str | None) -> bool:
    return module == HARNESS_MODULE or (module or "").startswith(HARNESS_MODULE + ".")


def _imports_harness(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and _is_harness(node.module)
    if isinstance(node, ast.Import):
        return any(_is_harness(alias.name) for alias in node.names)
    return False


def _calls_finish(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "finish"
    )
