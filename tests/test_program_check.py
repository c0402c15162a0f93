"""The handed-over program is data: only allow-listed tensor operators and raw weights load.

Every model here is exported through the harness's own handover (or, for the archive attacks,
a real export rewritten the way a hostile train.py could write it), then loaded with
`load_model`, which the sealed evaluator, `autolab sample` and `inspect` all use.
"""

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import autolab.recipes.gpt as gpt
import autolab.recipes.mlp as mlp
from autolab.errors import UsageError
from autolab.harness.allowed_ops import ALLOWED_ATEN
from autolab.harness.handover import MODEL_FILE, export_model, load_model
from autolab.harness.program_check import RefusedProgram
from autolab.sampling import load_run

VOCAB = 27


class Bigram(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(VOCAB, VOCAB)

    def forward(self, idx):  # (B, T) -> (B, T, V)
        return self.table(idx)


class Layers(Bigram):
    """What an agent's edit may reach for: nn layers, masks, autocast and no_grad inside forward."""

    def __init__(self, T: int = 16, C: int = 32):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(VOCAB, C), torch.nn.Embedding(T, C)
        self.ln, self.drop = torch.nn.LayerNorm(C), torch.nn.Dropout(0.1)
        self.conv = torch.nn.Conv1d(C, C, 3, padding=2)
        self.mha = torch.nn.MultiheadAttention(C, 4, batch_first=True)
        self.head = torch.nn.Linear(C, VOCAB)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)))

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.ln(self.wte(idx) + self.wpe(torch.arange(T))))
        x = x + F.silu(self.conv(x.transpose(1, 2))[..., :T].transpose(1, 2))
        att = torch.einsum("btc,bsc->bts", x, x).masked_fill(self.mask[:T, :T] == 0, -1e9)
        x = x + F.softmax(att, dim=-1) @ x + x.cumsum(1) / torch.arange(1, T + 1).view(1, T, 1)
        upper = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        x = x + self.mha(x, x, x, attn_mask=upper, need_weights=False)[0]
        with torch.no_grad():
            x = x + F.gelu(x).clamp(-3, 3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = self.head(x)
        return F.log_softmax(logits.float(), dim=-1)


def handed_over(model: torch.nn.Module, tmp_path: Path, context_len: int = 16) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    export_model(model, context_len, VOCAB, run_dir)
    return run_dir


def test_every_allowed_name_is_an_aten_operator():
    unknown = [name for name in ALLOWED_ATEN if not hasattr(torch.ops.aten, name)]
    assert unknown == []


@pytest.mark.parametrize(
    "build, context_len",
    [
        (
            lambda: gpt.GPT(VOCAB, gpt.DEPTH, 96, gpt.HEAD_DIM, gpt.SEQ_LEN, line_breaks=[1]),
            gpt.SEQ_LEN,
        ),
        (lambda: mlp.MLP(VOCAB), mlp.CONTEXT_LEN),
        (Bigram, 32),
        (Layers, 16),
    ],
    ids=["gpt recipe", "mlp recipe", "bigram", "common layers"],
)
def test_recipes_and_common_layers_pass(tmp_path, build, context_len):
    model, info = load_model(handed_over(build(), tmp_path, context_len))
    assert model(torch.zeros((2, context_len), dtype=torch.long)).shape == (2, context_len, VOCAB)


@torch.library.custom_op("autolab_test::read_file", mutates_args=())
def read_file(x: torch.Tensor, path: str) -> torch.Tensor:
    """A custom operator that reads a file: what a cheat would use to fetch the sealed split."""
    Path(path + ".read").write_text("the operator ran")
    return x + float(len(Path(path).read_bytes()))


@read_file.register_fake
def _(x, path):
    return torch.empty_like(x)


class ReadsAFile(Bigram):
    def __init__(self, path: Path):
        super().__init__()
        self.path = str(path)

    def forward(self, idx):
        return read_file(self.table(idx), self.path)


class Branches(Bigram):
    def forward(self, idx):
        x = self.table(idx)
        return torch.cond(x.sum() > 0, lambda x: x * 2, lambda x: x - 1, (x,))


class CountsCalls(Bigram):
    """Keeps a count across calls: honest for the first calls (the probes), then not."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, idx):
        self.calls.add_(1)
        return self.table(idx) * (self.calls > 8)


def test_a_custom_operator_that_reads_a_file_is_refused_by_name(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"validation tokens")
    run_dir = handed_over(ReadsAFile(secret), tmp_path)
    with pytest.raises(RefusedProgram, match=r"torch\.ops\.autolab_test\.read_file\.default"):
        load_model(run_dir)
    assert not Path(str(secret) + ".read").exists()


def test_a_higher_order_operator_is_refused_by_name(tmp_path):
    with pytest.raises(RefusedProgram, match=r"torch\.ops\.higher_order\.cond is not allowed"):
        load_model(handed_over(Branches(), tmp_path))


def test_sample_and_inspect_say_the_refusal_in_one_line(tmp_path):
    run_dir = handed_over(Branches(), tmp_path)
    with pytest.raises(UsageError, match=r"is refused: higher-order operator .*cond") as caught:
        load_run(run_dir, tmp_path)
    assert "\n" not in str(caught.value)


def test_state_kept_between_calls_is_refused(tmp_path):
    with pytest.raises(RefusedProgram, match=r"aten\.add_\.Tensor writes into .*calls"):
        load_model(handed_over(CountsCalls(), tmp_path))


def rewrite(path: Path, suffix: str, change) -> None:
    """Rewrite the archive entry whose name ends with `suffix` as a hostile train.py could."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, change(data) if name.endswith(suffix) else data)


def test_an_aten_operator_that_reads_a_file_is_refused_before_loading(tmp_path):
    """aten::from_file cannot be exported (no meta kernel), but the graph is JSON one can edit."""
    run_dir = handed_over(Bigram(), tmp_path)
    embedding, from_file = b"torch.ops.aten.embedding.default", b"torch.ops.aten.from_file.default"
    rewrite(run_dir / MODEL_FILE, "model.json", lambda data: data.replace(embedding, from_file))
    with pytest.raises(RefusedProgram, match=r"torch\.ops\.aten\.from_file\.default is not on"):
        load_model(run_dir)


def test_a_second_entry_of_the_same_name_is_refused(tmp_path):
    """zipfile reads the last of two same-named entries and torch's reader the first: one
    could hold the graph checked and the other the graph run."""
    run_dir = handed_over(Bigram(), tmp_path)
    with zipfile.ZipFile(run_dir / MODEL_FILE) as archive:
        name = next(n for n in archive.namelist() if n.endswith("models/model.json"))
        graph = archive.read(name)
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(run_dir / MODEL_FILE, "a") as archive:
            archive.writestr(name, graph)
    with pytest.raises(RefusedProgram, match="names an entry twice"):
        load_model(run_dir)


class Touch:
    """A pickle that runs code when loaded: it creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_in_the_archive_is_refused_unread(tmp_path):
    run_dir = handed_over(Bigram(), tmp_path)
    marker = tmp_path / "pickle-ran"

    def use_pickle(config: bytes) -> bytes:
        data = json.loads(config)
        for payload in data["config"].values():
            payload["use_pickle"] = True
        return json.dumps(data).encode()

    rewrite(run_dir / MODEL_FILE, "_weights_config.json", use_pickle)
    buffer = io.BytesIO()
    pickle.dump(Touch(marker), buffer)
    rewrite(run_dir / MODEL_FILE, "data/weights/weight_0", lambda _: buffer.getvalue())
    with pytest.raises(RefusedProgram, match="stored as a pickle"):
        load_model(run_dir)
    assert not marker.exists()
    # Without the check, torch.export.load itself runs the pickle's code (then fails on the
    # file object it got back instead of a tensor).
    try:
        torch.export.load(run_dir / MODEL_FILE)
    except Exception:  # what torch raises on the non-tensor does not matter here
        pass
    assert marker.exists()


def test_guard_code_and_shape_expressions_are_refused(tmp_path):
    run_dir = handed_over(Bigram(), tmp_path)
    archive = run_dir / MODEL_FILE
    original = archive.read_bytes()

    def add(key, value):
        def change(data: bytes) -> bytes:
            program = json.loads(data)
            program[key] = value
            return json.dumps(program).encode()

        return change

    rewrite(archive, "models/model.json", add("guards_code", ["__import__('os').getpid()"]))
    with pytest.raises(RefusedProgram, match="guard code"):
        load_model(run_dir)
    archive.write_bytes(original)
    rewrite(archive, "models/model.json", add("extra", {"expr_str": "__import__('os')"}))
    with pytest.raises(RefusedProgram, match="not arithmetic"):
        load_model(run_dir)
