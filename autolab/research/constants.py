"""The UPPER_CASE constants of a train.py: read them, edit them minimally, describe a change.

A recipe keeps its hyperparameters as commented module-level assignments in one block:

    DEPTH = 4  # number of transformer blocks; the width derives from it
    SEQ_LEN = 2**7  # context length in tokens
    ACTIVATION = "relu2"  # one of: "relu2", "gelu"

`parse_constants` reads them with `ast` (nothing is executed) and keeps each value's exact source
span, so `apply_changes` can rewrite only the value text of an assignment and leave every other
character of the file as it was. `describe_changes` says what changed as a person would.
"""

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KINDS = ("int", "pow2", "float", "bool", "str", "tuple", "derived")
NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# The largest k of a `2**k` read as a number: a train.py may write any exponent, and working out
# 2**999999999 would hold the referee up for minutes and gigabytes. A larger one is "derived".
MAX_POW2_EXPONENT = 64
# `# one of: "relu2", "gelu"` or `# choices: relu2, gelu`
CHOICES = re.compile(r"(?:one of|choices)\s*:\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class Constant:
    """One module-level `NAME = value` of a recipe.

    kind: int | pow2 (written `2**k`) | float | bool | str | tuple | derived (any other
    expression, usually of other constants: `MODEL_DIM = DEPTH * 64`; it has no value).
    choices: for a str, the values its trailing comment allows; empty when none are named.
    span: (line, col, end_line, end_col) of the value's text; lines 1-based, columns are
    character offsets into the line.
    """

    name: str
    value: object
    kind: str
    text: str  # the value exactly as written
    line: int
    choices: tuple[str, ...] = ()
    comment: str = ""  # the trailing comment, without "#"
    span: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def searchable(self) -> bool:
        """Whether a search may change it: numbers, bools and strs with named choices."""
        if self.kind == "str":
            return len(self.choices) > 1
        return self.kind in ("int", "pow2", "float", "bool")


def parse_constants(source: str) -> dict[str, Constant]:
    """The UPPER_CASE module-level constants of `source`, by name, in source order.

    A name assigned more than once keeps its last assignment (the one in effect at runtime).
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    comments = _trailing_comments(source)
    found: dict[str, Constant] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not (isinstance(target, ast.Name) and NAME.fullmatch(target.id)):
            continue
        span = _char_span(lines, value)
        text = _slice(lines, span)
        comment = comments.get(node.end_lineno, "")
        literal, kind = _literal(value)
        choices = _choices(comment, literal) if kind == "str" else ()
        found.pop(target.id, None)  # a reassignment moves the name to its new place
        found[target.id] = Constant(
            target.id, literal, kind, text, node.lineno, choices, comment, span
        )
    return found


def values(constants: Mapping[str, Constant]) -> dict[str, object]:
    """name -> value of the constants that have one (everything but derived)."""
    return {name: c.value for name, c in constants.items() if c.kind != "derived"}


def kinds_of(constants: Iterable[Constant]) -> dict[str, str]:
    """name -> kind, for `describe_changes`."""
    return {c.name: c.kind for c in constants}


def apply_changes(source: str, changes: Mapping[str, object]) -> str:
    """`source` with the value text of each named constant replaced, and nothing else changed.

    The trailing comment stays; in an aligned block (more than two spaces before the comment)
    the comment keeps its column where the new value leaves room for two spaces. Raises
    KeyError for an unknown name and ValueError for a derived constant.
    """
    constants = parse_constants(source)
    lines = source.splitlines(keepends=True)
    # Edit from the bottom up so earlier spans stay valid.
    for name in sorted(changes, key=lambda n: constants[n].span, reverse=True):
        c = constants[name]
        if c.kind == "derived":
            raise ValueError(f"{name} is derived from other names ({c.text}); edit those")
        new_text = format_value(c, changes[name])
        line, col, end_line, end_col = c.span
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        if c.comment and end_line == line:
            tail = _realign(tail, len(new_text) - len(c.text))
        lines[line - 1 : end_line] = [head + new_text + tail]
    return "".join(lines)


def format_value(constant: Constant, value: object) -> str:
    """How `value` is written for `constant`: `2**k` for a pow2, the constant's quote style..."""
    kind = constant.kind
    if kind == "pow2" and _is_pow2(value):
        op = " ** " if " ** " in constant.text else "**"
        return f"2{op}{int(value).bit_length() - 1}"
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind == "float":
        return format_float(value, scientific="e" in constant.text.lower())
    if isinstance(value, str):
        return _quote(value, '"' if constant.text.startswith('"') else "'")
    if isinstance(value, int) and not isinstance(value, bool) and "_" in constant.text:
        return f"{value:_}"
    return _format_plain(value)


def format_float(x: float, scientific: bool = False) -> str:
    """x rounded to 3 significant digits, readable: 0.02, 15.0, 3e-4, 1.5e-5."""
    x = round_float(x)
    if x == 0 or not (scientific or abs(x) < 1e-3 or abs(x) >= 1e5):
        return repr(x)
    mantissa, exponent = f"{x:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def round_float(x: float) -> float:
    """x to 3 significant digits, the precision `apply_changes` writes floats with."""
    return float(f"{x:.3g}")


def describe_changes(
    old_values: Mapping[str, object],
    new_values: Mapping[str, object],
    kinds: Mapping[str, str] | None = None,
) -> str:
    """One line, as a person would write it: "increase DEPTH from 4 to 6 and turn off USE_QK_NORM".

    Names whose value is unchanged are left out; the order is `new_values`'. `kinds` (name ->
    Constant.kind) lets pow2 constants read as 2**k; without it an int reads as 2**k when both
    values are powers of two of at least 2**8 (batch sizes, not depths).
    """
    kinds = kinds or {}
    parts = []
    for name, new in new_values.items():
        old = old_values.get(name)
        if name in old_values and _same(old, new):
            continue
        kind = kinds.get(name) or _guess_kind(old, new)
        parts.append(_describe_one(name, old, new, kind, name in old_values))
    if not parts:
        return "no change"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _describe_one(name: str, old: object, new: object, kind: str, had_old: bool) -> str:
    if isinstance(new, bool) and (isinstance(old, bool) or not had_old):
        return f"turn {'on' if new else 'off'} {name}"
    if not had_old:
        return f"set {name} to {_show(new, kind)}"
    if _is_number(old) and _is_number(new):
        verb = "increase" if new > old else "reduce"
        return f"{verb} {name} from {_show(old, kind)} to {_show(new, kind)}"
    return f"set {name} to {_show(new, kind)} (was {_show(old, kind)})"


def _show(value: object, kind: str) -> str:
    if kind == "pow2" and _is_pow2(value):
        return f"2**{int(value).bit_length() - 1}"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_float(value)
    return _format_plain(value)


def _guess_kind(old: object, new: object) -> str:
    if _is_pow2(old) and _is_pow2(new) and min(old, new) >= 2**8:
        return "pow2"
    return ""


def _same(a: object, b: object) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return tuple(a) == tuple(b)
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_pow2(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0 and x & (x - 1) == 0


def _format_plain(value: object) -> str:
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, list | tuple):
        items = [_format_plain(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, str):
        return _quote(value, '"')
    if isinstance(value, bool | int):
        return repr(value)
    raise TypeError(f"cannot write a constant of type {type(value).__name__}: {value!r}")


def _quote(s: str, q: str) -> str:
    return q + s.replace("\\", "\\\\").replace(q, "\\" + q).replace("\n", "\\n") + q


# ---------------------------------------------------------------------------------------------
# Parsing helpers


def _literal(node: ast.expr) -> tuple[object, str]:
    """(value, kind) of a literal the search understands, else (None, "derived")."""
    if isinstance(node, ast.Tuple):
        items = [_literal(e) for e in node.elts]
        if all(kind != "derived" for _, kind in items):
            return tuple(v for v, _ in items), "tuple"
        return None, "derived"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exp = node.left, node.right
        if (
            isinstance(base, ast.Constant)
            and base.value == 2
            and type(base.value) is int
            and isinstance(exp, ast.Constant)
            and type(exp.value) is int
            and 0 <= exp.value <= MAX_POW2_EXPONENT
        ):
            return 2**exp.value, "pow2"
        return None, "derived"
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    if negative:
        node = node.operand
    if not isinstance(node, ast.Constant):
        return None, "derived"
    v = node.value
    if isinstance(v, bool):
        return (v, "bool") if not negative else (None, "derived")
    if isinstance(v, int):
        return (-v if negative else v), "int"
    if isinstance(v, float):
        return (-v if negative else v), "float"
    if isinstance(v, str) and not negative:
        return v, "str"
    return None, "derived"


def _choices(comment: str, value: str) -> tuple[str, ...]:
    """The values a str constant's comment allows, with its own value among them."""
    m = CHOICES.search(comment)
    if not m:
        return ()
    listed = m.group(1)
    quoted = re.findall(r"\"([^\"]*)\"|'([^']*)'", listed)
    if quoted:
        names = [a or b for a, b in quoted]
    else:  # `choices: a, b (the default)`: the first word of each comma-separated item
        words = (re.match(r"\s*([\w.+-]+)", item) for item in listed.split(","))
        names = [w.group(1) for w in words if w]
    names = list(dict.fromkeys(n for n in names if n))
    if value not in names:
        names.append(value)
    return tuple(names)


def _trailing_comments(source: str) -> dict[int, str]:
    """line -> comment text (without "#") of each line that ends with a comment."""
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string[1:].strip()
    return comments


def _char_span(lines: list[str], node: ast.expr) -> tuple[int, int, int, int]:
    """The node's span with `ast`'s UTF-8 byte columns turned into character columns."""

    def chars(line: int, byte_col: int) -> int:
        return len(lines[line - 1].encode()[:byte_col].decode())

    return (
        node.lineno,
        chars(node.lineno, node.col_offset),
        node.end_lineno,
        chars(node.end_lineno, node.end_col_offset),
    )


def _slice(lines: list[str], span: tuple[int, int, int, int]) -> str:
    line, col, end_line, end_col = span
    if line == end_line:
        return lines[line - 1][col:end_col]
    middle = lines[line : end_line - 1]
    return lines[line - 1][col:] + "".join(middle) + lines[end_line - 1][:end_col]


def _realign(tail: str, growth: int) -> str:
    """Keep an aligned comment's column when the value before it grew or shrank by `growth`."""
    gap = len(tail) - len(tail.lstrip(" "))
    if gap <= 2 or not tail.lstrip(" ").startswith("#"):
        return tail  # not an aligned block: keep the spacing as written
    return " " * max(gap - growth, 2) + tail[gap:]
