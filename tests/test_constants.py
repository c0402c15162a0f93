import ast
import difflib

import pytest

from autolab.research.constants import (
    apply_changes,
    describe_changes,
    format_float,
    parse_constants,
    values,
)

RECIPE = '''"""A recipe."""

import math

from autolab.harness import Run

DEPTH = 4               # number of transformer blocks; the width derives from it
ASPECT_RATIO = 64       # model_dim = DEPTH * ASPECT_RATIO
TOTAL_BATCH_SIZE = 2**14  # tokens per optimizer step
SEQ_LEN = 2 ** 9        # context length
MATRIX_LR = 0.02        # Muon learning rate for hidden matrices
EMBEDDING_LR = 3e-4     # AdamW
WEIGHT_DECAY = 0.0
CLIP = -1.5             # negative turns clipping off
WINDOW = (64, 128)      # a tuple
USE_QK_NORM = True      # boolean
ACTIVATION = "relu2"    # one of: "relu2", "gelu", "silu"
NORM = 'rms'  # choices: rms, layer (rms is nanochat's)
NAME = "café"  # a fixed string; no choices
MODEL_DIM = DEPTH * ASPECT_RATIO  # derived
EVAL_TOKENS: int = 10_000  # annotated
lowercase = 3


def helper():
    INSIDE = 5  # not module level
    return INSIDE
'''


def test_parse_every_kind():
    c = parse_constants(RECIPE)
    assert values(c) == {
        "DEPTH": 4,
        "ASPECT_RATIO": 64,
        "TOTAL_BATCH_SIZE": 2**14,
        "SEQ_LEN": 512,
        "MATRIX_LR": 0.02,
        "EMBEDDING_LR": 3e-4,
        "WEIGHT_DECAY": 0.0,
        "CLIP": -1.5,
        "WINDOW": (64, 128),
        "USE_QK_NORM": True,
        "ACTIVATION": "relu2",
        "NORM": "rms",
        "NAME": "café",
        "EVAL_TOKENS": 10_000,
    }
    kinds = {name: const.kind for name, const in c.items()}
    assert kinds["DEPTH"] == "int" and kinds["TOTAL_BATCH_SIZE"] == "pow2"
    assert kinds["SEQ_LEN"] == "pow2" and kinds["MATRIX_LR"] == "float"
    assert kinds["CLIP"] == "float" and kinds["WINDOW"] == "tuple"
    assert kinds["USE_QK_NORM"] == "bool" and kinds["ACTIVATION"] == "str"
    assert kinds["MODEL_DIM"] == "derived" and c["MODEL_DIM"].value is None
    assert "lowercase" not in c and "INSIDE" not in c
    assert c["ACTIVATION"].choices == ("relu2", "gelu", "silu")
    assert c["NORM"].choices == ("rms", "layer")
    assert c["NAME"].choices == ()
    assert [n for n, k in c.items() if k.searchable] == [
        "DEPTH",
        "ASPECT_RATIO",
        "TOTAL_BATCH_SIZE",
        "SEQ_LEN",
        "MATRIX_LR",
        "EMBEDDING_LR",
        "WEIGHT_DECAY",
        "CLIP",
        "USE_QK_NORM",
        "ACTIVATION",
        "NORM",
        "EVAL_TOKENS",
    ]
    depth = c["DEPTH"]
    assert (depth.text, depth.line, depth.span) == ("4", 7, (7, 8, 7, 9))
    assert depth.comment == "number of transformer blocks; the width derives from it"
    assert c["TOTAL_BATCH_SIZE"].text == "2**14" and c["SEQ_LEN"].text == "2 ** 9"
    assert c["WEIGHT_DECAY"].comment == ""


def _changed_lines(old: str, new: str) -> set[int]:
    """1-based numbers of the old lines that differ in new (which must have as many lines)."""
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    changed = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            assert tag == "replace" and i2 - i1 == j2 - j1
            changed.update(range(i1 + 1, i2 + 1))
    return changed


def test_apply_changes_is_a_minimal_edit():
    changes = {
        "DEPTH": 6,
        "TOTAL_BATCH_SIZE": 2**13,
        "MATRIX_LR": 0.0312345,
        "EMBEDDING_LR": 1e-3,
        "USE_QK_NORM": False,
        "ACTIVATION": "gelu",
        "NORM": "layer",
        "NAME": "naïve",  # non-ASCII before the comment: columns are characters, not bytes
        "WINDOW": (32, 256),
        "CLIP": -0.5,
        "EVAL_TOKENS": 20_000,
    }
    new = apply_changes(RECIPE, changes)
    ast.parse(new)
    old_c, new_c = parse_constants(RECIPE), parse_constants(new)
    assert _changed_lines(RECIPE, new) == {old_c[name].line for name in changes}
    expected = {**changes, "MATRIX_LR": 0.0312}  # floats are written with 3 significant digits
    assert {name: new_c[name].value for name in changes} == expected
    for name, const in old_c.items():
        assert new_c[name].comment == const.comment
    lines = new.splitlines()
    assert (
        lines[6]
        == "DEPTH = 6               # number of transformer blocks; the width derives from it"
    )
    assert lines[8] == "TOTAL_BATCH_SIZE = 2**13  # tokens per optimizer step"
    assert lines[10] == "MATRIX_LR = 0.0312      # Muon learning rate for hidden matrices"
    assert lines[11] == "EMBEDDING_LR = 1e-3     # AdamW"  # written as it was: scientific
    assert lines[14] == "WINDOW = (32, 256)      # a tuple"
    assert lines[15] == "USE_QK_NORM = False     # boolean"
    assert lines[16] == 'ACTIVATION = "gelu"     # one of: "relu2", "gelu", "silu"'
    assert lines[17] == "NORM = 'layer'  # choices: rms, layer (rms is nanochat's)"
    assert lines[18] == 'NAME = "naïve"  # a fixed string; no choices'
    assert lines[20] == "EVAL_TOKENS: int = 20_000  # annotated"


def test_apply_changes_keeps_two_spaces_when_the_value_outgrows_the_column():
    new = apply_changes(RECIPE, {"ASPECT_RATIO": 123456789012})
    assert "ASPECT_RATIO = 123456789012  # model_dim" in new
    assert apply_changes(RECIPE, {}) == RECIPE


def test_pow2_rendering_keeps_the_written_style():
    new = apply_changes(RECIPE, {"TOTAL_BATCH_SIZE": 2**16, "SEQ_LEN": 2**10})
    assert "TOTAL_BATCH_SIZE = 2**16  #" in new
    assert "SEQ_LEN = 2 ** 10       # context length" in new
    # A value that is not a power of two is written as a plain int.
    assert "TOTAL_BATCH_SIZE = 3000  #" in apply_changes(RECIPE, {"TOTAL_BATCH_SIZE": 3000})


def test_format_float():
    assert format_float(0.02) == "0.02"
    assert format_float(3e-4) == "3e-4"
    assert format_float(0.000123456) == "1.23e-4"
    assert format_float(15.0) == "15.0"
    assert format_float(0.98765) == "0.988"
    assert format_float(12345.678) == "12300.0"
    assert format_float(0.0) == "0.0"
    assert format_float(0.05, scientific=True) == "5e-2"
    assert "EMBEDDING_LR = 5e-4" in apply_changes(RECIPE, {"EMBEDDING_LR": 5e-4})


def test_apply_changes_refuses_derived_and_unknown_names():
    with pytest.raises(ValueError, match="derived"):
        apply_changes(RECIPE, {"MODEL_DIM": 128})
    with pytest.raises(KeyError):
        apply_changes(RECIPE, {"NOPE": 1})


def test_describe_changes_wording():
    kinds = {n: c.kind for n, c in parse_constants(RECIPE).items()}
    old = values(parse_constants(RECIPE))
    assert describe_changes(old, {"DEPTH": 6}) == "increase DEPTH from 4 to 6"
    assert (
        describe_changes(old, {"TOTAL_BATCH_SIZE": 2**13}, kinds)
        == "reduce TOTAL_BATCH_SIZE from 2**14 to 2**13"
    )
    # Without kinds, large powers of two still read as 2**k; small ints stay ints.
    assert (
        describe_changes(old, {"TOTAL_BATCH_SIZE": 2**13})
        == "reduce TOTAL_BATCH_SIZE from 2**14 to 2**13"
    )
    assert describe_changes({"DEPTH": 4}, {"DEPTH": 8}) == "increase DEPTH from 4 to 8"
    assert describe_changes(old, {"ACTIVATION": "gelu"}) == "set ACTIVATION to gelu (was relu2)"
    assert describe_changes(old, {"USE_QK_NORM": False}) == "turn off USE_QK_NORM"
    assert describe_changes({"USE_QK_NORM": False}, {"USE_QK_NORM": True}) == "turn on USE_QK_NORM"
    assert (
        describe_changes(old, {"DEPTH": 6, "MATRIX_LR": 0.0312345})
        == "increase DEPTH from 4 to 6 and increase MATRIX_LR from 0.02 to 0.0312"
    )
    assert (
        describe_changes(old, {"EMBEDDING_LR": 1e-4, "WINDOW": (64, 256), "DEPTH": 4})
        == "reduce EMBEDDING_LR from 3e-4 to 1e-4 and set WINDOW to (64, 256) (was (64, 128))"
    )
    assert (
        describe_changes(old, {"DEPTH": 2, "SEQ_LEN": 1024, "USE_QK_NORM": False}, kinds)
        == "reduce DEPTH from 4 to 2, increase SEQ_LEN from 2**9 to 2**10 and turn off USE_QK_NORM"
    )
    assert describe_changes(old, {"DEPTH": 4}) == "no change"


def test_a_huge_power_of_two_is_not_worked_out():
    """`2**k` past MAX_POW2_EXPONENT stays unevaluated ("derived"): the referee reads every
    experiment's train.py, and 2**999999999 would take it minutes and gigabytes."""
    constants = parse_constants("A = 2**64\nB = 2**65\nC = 2**999999999\n")
    assert constants["A"].kind == "pow2" and constants["A"].value == 2**64
    assert constants["B"].kind == constants["C"].kind == "derived"
    assert constants["C"].value is None
