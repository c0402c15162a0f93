"""The recipes train, hand over a causal exported model, and keep a parseable constants block.

Each recipe runs for real, as a workspace's train.py would: a fresh process, the harness's
environment variables, a 2 s budget on tiny char-level shards written here.
"""

import ast
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autolab.errors import UsageError
from autolab.harness.handover import MODEL_FILE, load_model
from autolab.recipes import RECIPES, recipe_source
from autolab.summary import parse_summary

REPO = Path(__file__).resolve().parents[1]
TEXT = "\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "noah", "liam"] * 400)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Prepared char shards in the layout the harness reads (autolab.data.prepare's)."""
    root = tmp_path_factory.mktemp("data")
    chars = sorted(set(TEXT))
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # id 0: unknown
    ids = np.array([stoi[c] for c in TEXT], dtype=np.uint16)
    cut = int(0.9 * len(ids))
    ids[:cut].tofile(root / "train.bin")
    ids[cut:].tofile(root / "dev.bin")
    np.save(root / "token_bytes.npy", np.array([0] + [1] * len(chars), dtype=np.int32))
    meta = {"format": 1, "vocab_size": len(chars) + 1, "dtype": "uint16"}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module", params=sorted(RECIPES))
def trained(request, data_dir, tmp_path_factory):
    """(recipe name, run dir, process result) after a 2 s training run of the recipe."""
    name = request.param
    run_dir = tmp_path_factory.mktemp(f"run-{name}")
    train_py = run_dir / "train.py"
    train_py.write_text(recipe_source(name))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AUTOLAB_DATA_DIR": str(data_dir),
        "AUTOLAB_RUN_DIR": str(run_dir),
        "AUTOLAB_BUDGET_S": "2",
        "AUTOLAB_DEVICE": "cpu",
        "AUTOLAB_SEED": "0",
    }
    proc = subprocess.run(
        [sys.executable, str(train_py)],
        env=env,
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return name, run_dir, proc


def test_recipe_trains_and_prints_a_finite_score(trained):
    name, run_dir, proc = trained
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = parse_summary(proc.stdout)
    assert math.isfinite(summary["val_bpb"]) and summary["val_bpb"] > 0
    assert summary["num_steps"] >= 1
    assert (run_dir / MODEL_FILE).is_file()


def test_exported_model_is_causal_at_every_length(trained):
    name, run_dir, proc = trained
    assert proc.returncode == 0, proc.stderr[-2000:]
    model, info = load_model(run_dir)
    context_len, vocab = info["context_len"], info["vocab_size"]
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(1, vocab, (2, context_len), generator=gen)
    with torch.no_grad():
        logits = model(idx)
        assert logits.shape == (2, context_len, vocab)
        assert model(idx[:, :1]).shape == (2, 1, vocab)
        cut = context_len // 2
        changed = idx.clone()
        changed[:, cut:] = torch.randint(1, vocab, (2, context_len - cut), generator=gen)
        other = model(changed)
        assert torch.allclose(logits[:, :cut], other[:, :cut], atol=1e-5)
        assert not torch.allclose(logits[:, cut:], other[:, cut:])  # later positions do look
        # A prefix alone gives the same logits as inside the full sequence.
        assert torch.allclose(model(idx[:, :cut]), logits[:, :cut], atol=1e-4)


def constants_block(source: str) -> dict[str, ast.expr]:
    """The module-level UPPER_CASE assignments before the first function or class."""
    constants = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            break
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and re.fullmatch(r"[A-Z][A-Z0-9_]*", target.id):
                constants[target.id] = node
    return constants


def is_search_literal(value: ast.expr) -> bool:
    """A plain int, float, bool or str literal, or a power of two written 2**k."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, int | float | bool | str)
    return (
        isinstance(value, ast.BinOp)
        and isinstance(value.op, ast.Pow)
        and isinstance(value.left, ast.Constant)
        and value.left.value == 2
        and isinstance(value.right, ast.Constant)
        and isinstance(value.right.value, int)
    )


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_constants_block_parses(name):
    source = recipe_source(name)
    lines = source.splitlines()
    constants = constants_block(source)
    assert len(constants) >= 5
    for const, node in constants.items():
        assert is_search_literal(node.value), f"{name}: {const} is not a literal or 2**k"
        line = lines[node.lineno - 1]
        assert "#" in line or lines[node.lineno - 2].lstrip().startswith("#"), (
            f"{name}: {const} has no comment"
        )
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            choices = re.search(r"# one of: (.*)$", line)
            assert choices, f"{name}: string constant {const} does not name its choices"
            assert repr(node.value.value).replace("'", '"') in choices.group(1)


def test_unknown_recipe_is_a_usage_error():
    with pytest.raises(UsageError, match="gpt, mlp"):
        recipe_source("transformer-xl")
