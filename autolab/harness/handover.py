"""Handing the trained model over to autolab: a self-contained exported program.

The experiment's model is exported with `torch.export` (graph + weights, no Python source) into
the run directory. Whoever loads it (the sealed evaluator, `autolab sample`) runs only autolab
code and never imports the workspace's train.py. The loaded model maps token ids (B, T), any B
and any T from 1 to `context_len`, to logits (B, T, vocab).

The program itself is exported for one fixed shape, (EXPORT_BATCH, context_len): tracing with
symbolic shapes costs about three times as long (0.3 s against 1.0 s for a small GPT on two CPU
cores), and that time is paid by every experiment. `load_model` adapts other shapes to it: rows
are filled up to the batch with zeros and sequences are padded on the right. Padding on the
right changes nothing at earlier positions of a causal model, and the sealed evaluator refuses
models that are not causal before it believes any of their outputs.

So a call costs a whole (EXPORT_BATCH, context_len) forward however short its input. Sampling
calls once per generated token; a model that reads far more than it attends to (the gpt recipe
reads 8 training sequences at once, each token attending one sequence back) also hands over a
second program for `sample_len` tokens, SAMPLER_FILE, which sampling uses instead.
"""

import json
import os
import sys
import typing
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.fx.config
from torch._export.serde import serialize as torch_serde

from autolab.harness.files import MODEL_FILE, MODEL_INFO_FILE, SAMPLER_FILE, write_atomically
from autolab.harness.program_check import check_program, checked_archive

EXPORT_BATCH = 16  # rows per call of the program; the evaluator scores this many windows at once


def export_model(
    model: torch.nn.Module,
    context_len: int,
    vocab_size: int,
    run_dir: Path,
    sample_len: int | None = None,
) -> Path:
    """Export `model` for (EXPORT_BATCH, context_len) token ids, and for (EXPORT_BATCH,
    sample_len) into SAMPLER_FILE when `sample_len` is shorter; returns the first file.

    The files appear in the order the runner needs them (autolab.evaluation.early): the info,
    then the scored program, each whole at once (renamed into place), then the sampler. With
    the scored program on disk the runner starts the sealed score while the sampler exports."""
    run_dir = Path(run_dir)
    device = next(model.parameters()).device
    info = {
        "context_len": context_len,
        "vocab_size": vocab_size,
        "device": str(device),
        "batch": EXPORT_BATCH,
    }
    with_sampler = sample_len is not None and sample_len < context_len
    if with_sampler:
        info["sample_len"] = sample_len
    (run_dir / SAMPLER_FILE).unlink(missing_ok=True)  # a stale one would not match the weights
    write_atomically(run_dir / MODEL_INFO_FILE, json.dumps(info))
    path = _export_program(model, context_len, run_dir / MODEL_FILE)
    if with_sampler:
        _export_program(model, sample_len, run_dir / SAMPLER_FILE)
    return path


def _export_program(model: torch.nn.Module, length: int, path: Path) -> Path:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    example = torch.zeros((EXPORT_BATCH, length), dtype=torch.long, device=device)
    try:
        with torch.no_grad(), _without_stack_traces():
            program = torch.export.export(model, (example,))
    finally:
        model.train(was_training)
    tmp = path.with_name(path.stem + ".partial.pt2")  # torch.export.save wants the .pt2 suffix
    with _without_canonical_form_test():
        torch.export.save(program, tmp)
    tmp.replace(path)
    return path


@contextmanager
def _without_stack_traces():
    """Trace without recording each operator's Python stack: no reader of the program uses
    it, and extracting it took ~14% of exporting and saving a 4-block GPT, both programs
    (2.64 s against 2.28 s, 2 AMD EPYC cores, 2026-12-07). A failed export still says why."""
    before = getattr(torch.fx.config, "do_not_emit_stack_traces", False)
    torch.fx.config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        torch.fx.config.do_not_emit_stack_traces = before


@contextmanager
def _without_canonical_form_test():
    """Save without torch's self-test of the program's canonical form: the serializer builds
    that form from a deep copy of the whole graph ("Test canonical form is well defined") and
    throws it away, so the file is byte for byte the same without it. It was ~20% of exporting
    and saving a 4-block GPT, both programs (0.5 s of 2.3 s, 2 AMD EPYC cores, 2026-12-07)."""
    real = torch_serde.canonicalize
    torch_serde.canonicalize = lambda program, constants=None: program
    try:
        yield
    finally:
        torch_serde.canonicalize = real


class _TypingWithCachedHints:
    """The `typing` module as torch's deserializer sees it, with `get_type_hints` remembered.

    torch.export.load turns the program's JSON into its schema's dataclasses and asks
    `typing.get_type_hints` again for every one of them, ~6,000 times for a 4-block GPT: about
    half of a load, which every sealed score pays (0.8 s against 0.35 s once the hints are
    known, 2 AMD EPYC cores, 2026-12-07). A class's hints do not change, so each is computed
    once per process; the zygote's warm-up load fills them before any child is forked."""

    def __init__(self):
        self._hints = {}

    def get_type_hints(self, obj, globalns=None, localns=None, include_extras=False):
        if localns is not None or include_extras or not isinstance(obj, type):
            return typing.get_type_hints(obj, globalns, localns, include_extras)
        key = (obj, id(globalns))
        cached = self._hints.get(key)
        if cached is None or cached[0] is not globalns:  # an id is only unique while it lives
            cached = self._hints[key] = (globalns, typing.get_type_hints(obj, globalns))
        return cached[1]

    def __getattr__(self, name):  # only on a first use: the value then sits on the instance
        value = getattr(typing, name)
        setattr(self, name, value)
        return value


if getattr(torch_serde, "typing", None) is typing:
    torch_serde.typing = _TypingWithCachedHints()


class FixedShapeModel(torch.nn.Module):
    """Runs a program exported for (batch, context_len) on inputs of any (B, T <= context_len)."""

    def __init__(self, program: torch.nn.Module, batch: int, context_len: int):
        super().__init__()
        self.program = program
        self.batch = batch
        self.context_len = context_len

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        rows, length = idx.shape
        if length > self.context_len:
            raise ValueError(f"{length} tokens given; the model takes at most {self.context_len}")
        padded = torch.zeros((self.batch, self.context_len), dtype=idx.dtype, device=idx.device)
        outputs = []
        for start in range(0, rows, self.batch):
            chunk = idx[start : start + self.batch]
            padded.zero_()
            padded[: chunk.shape[0], :length] = chunk
            outputs.append(self.program(padded)[: chunk.shape[0], :length])
        return torch.cat(outputs)


def load_model(run_dir: Path, device: str = "cpu", for_sampling: bool = False):
    """The exported program as a callable module on `device`, plus its info dict.

    `for_sampling`: the program for `sample_len` tokens where the run handed one over that
    computes what the scored program does (the info's context_len is then that length); where it
    does not, the scored program, with a warning. Raises RefusedProgram
    (autolab.harness.program_check) before anything in the file runs if the scored program holds
    more than tensor operators and raw weights.
    """
    run_dir = Path(run_dir)
    info = json.loads((run_dir / MODEL_INFO_FILE).read_text())
    context_len = int(info["context_len"])
    model = _load_program(run_dir / MODEL_FILE, info, context_len, device)
    if not (for_sampling and "sample_len" in info):
        return model, info
    sample_len, problem = int(info["sample_len"]), None
    if not 0 < sample_len < context_len:
        problem = f"is said to be for {sample_len} tokens, not fewer than {context_len}"
    else:
        try:
            sampler = _load_program(run_dir / SAMPLER_FILE, info, sample_len, device)
            if not agrees(sampler, model, sample_len, int(info["vocab_size"]), device):
                problem = f"does not compute what {MODEL_FILE} does"
        except Exception as err:  # missing, damaged or refused: the scored program still works
            problem = f"cannot be used ({type(err).__name__})"
    if problem:
        print(f"warning: {SAMPLER_FILE} in {run_dir} {problem}; sampling from {MODEL_FILE}, "
              "which is slower", file=sys.stderr, flush=True)  # fmt: skip
        return model, info
    return sampler, {**info, "context_len": sample_len}


def _load_program(path: Path, info: dict, length: int, device: str) -> torch.nn.Module:
    program = torch.export.load(checked_archive(path))
    check_program(program)
    module = program.module()
    module.to(device)
    if "batch" in info:  # exported for one shape; older runs' programs took any shape
        module = FixedShapeModel(module, int(info["batch"]), length)
    return module


@torch.no_grad()
def agrees(sampler, model, sample_len: int, vocab_size: int, device: str) -> bool:
    """Whether the sampler gives the scored model's logits on random text of its length.

    The sampler is the experiment's own file and nothing scores it: without this check, samples
    shown beside a score could come from a better model than the one that earned it. A causal
    model's first `sample_len` positions see only those tokens, so the two must agree there; a
    1% tolerance leaves room for the kernels two shapes choose, not for another model. The text
    is new each time, so a program cannot single it out.
    """
    fresh = torch.Generator().manual_seed(int.from_bytes(os.urandom(7), "little"))
    tokens = torch.randint(0, vocab_size, (4, sample_len), generator=fresh).to(device)
    expected, actual = model(tokens).float(), sampler(tokens).float()
    return expected.shape == actual.shape and torch.allclose(actual, expected, rtol=1e-2, atol=1e-2)
