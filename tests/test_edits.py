"""Parsing an agent's reply, applying search/replace blocks, validating the new train.py."""

import pytest

from autolab.research.edits import (
    Edit,
    EditError,
    apply_edits,
    parse_reply,
    validate_train_py,
)

TRAIN_PY = """\
from autolab.harness import Run

DEPTH = 4  # number of blocks
WIDTH = 64


def main():
    run = Run()
    model = make(DEPTH, WIDTH)
    run.finish(model, context_len=8)
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_parse_search_replace_blocks():
    reply = (
        "DESCRIPTION: deeper and wider\n\nSome words.\n"
        + block("DEPTH = 4  # number of blocks\n", "DEPTH = 6  # number of blocks\n")
        + "\n```\n"
        + block("WIDTH = 64\n", "WIDTH = 96\n")
        + "```\n"
    )
    description, edits, whole = parse_reply(reply)
    assert description == "deeper and wider"
    assert whole is None
    assert edits == [
        Edit("DEPTH = 4  # number of blocks\n", "DEPTH = 6  # number of blocks\n"),
        Edit("WIDTH = 64\n", "WIDTH = 96\n"),
    ]
    new = apply_edits(TRAIN_PY, edits)
    assert "DEPTH = 6  # number of blocks\nWIDTH = 96\n" in new
    validate_train_py(new, original=TRAIN_PY)


def test_parse_whole_file_takes_the_longest_fence():
    new = TRAIN_PY.replace("WIDTH = 64", "WIDTH = 128")
    reply = f"**DESCRIPTION:** wider model\n\n```python\nWIDTH = 128\n```\n\n```python\n{new}```\n"
    description, edits, whole = parse_reply(reply)
    assert (description, edits, whole) == ("wider model", None, new)


@pytest.mark.parametrize(
    "reply, message",
    [
        ("no description\n" + block("a\n", "b\n"), "no `DESCRIPTION"),
        ("DESCRIPTION: x\njust prose", "neither SEARCH/REPLACE blocks nor"),
        ("DESCRIPTION: x\n<<<<<<< SEARCH\nDEPTH = 4\n>>>>>>> REPLACE\n", "block 1 is malformed"),
        (
            "DESCRIPTION: x\n" + block("a\n", "b\n") + "<<<<<<< SEARCH\nc\n=======\nd\n",
            "block 2 is malformed",
        ),
    ],
)
def test_parse_errors(reply, message):
    with pytest.raises(EditError, match=message):
        parse_reply(reply)


def test_apply_tolerates_trailing_whitespace():
    edits = [Edit("DEPTH = 4  # number of blocks   \nWIDTH = 64\t\n", "DEPTH = 2\nWIDTH = 32\n")]
    new = apply_edits(TRAIN_PY, edits)
    assert "DEPTH = 2\nWIDTH = 32\n\n\ndef main" in new


def test_apply_blocks_in_order_and_deletion():
    edits = [Edit("WIDTH = 64\n", "WIDTH = 65\n"), Edit("WIDTH = 65\n", "")]
    assert "WIDTH" not in apply_edits(TRAIN_PY, edits).split("def")[0]


def test_apply_errors_name_the_block():
    with pytest.raises(EditError, match=r"SEARCH block 2 does not match train.py.*'DEPTH = 5'"):
        apply_edits(TRAIN_PY, [Edit("WIDTH = 64\n", "WIDTH = 1\n"), Edit("DEPTH = 5\n", "")])
    with pytest.raises(EditError, match="SEARCH block 1 matches 2 places"):
        apply_edits(TRAIN_PY, [Edit("DEPTH", "LAYERS")])
    with pytest.raises(EditError, match="SEARCH block 1 is empty"):
        apply_edits(TRAIN_PY, [Edit("\n", "x = 1\n")])


def test_validate_accepts_both_import_forms():
    validate_train_py(TRAIN_PY)
    other = TRAIN_PY.replace("from autolab.harness import Run", "import autolab.harness as h")
    validate_train_py(other.replace("run = Run()", "run = h.Run()"), original=TRAIN_PY)


@pytest.mark.parametrize(
    "source, message",
    [
        (TRAIN_PY, "unchanged"),
        (TRAIN_PY.replace("WIDTH = 64", "WIDTH = 64   ") + "\n\n", "unchanged"),
        (TRAIN_PY.replace("WIDTH = 64", "WIDTH = = 64"), r"does not parse: line 4: "),
        (TRAIN_PY.replace("from autolab.harness import Run", "from harness import Run"), "harness"),
        (TRAIN_PY.replace("run.finish(model, context_len=8)", "pass"), "finish"),
        # Mentioning finish in a comment or a string is not calling it.
        (
            TRAIN_PY.replace("run.finish(model, context_len=8)", "'run.finish('  # .finish("),
            "finish",
        ),
    ],
)
def test_validate_rejects(source, message):
    with pytest.raises(EditError, match=message) as info:
        validate_train_py(source, original=TRAIN_PY)
    assert "\n" not in str(info.value)
