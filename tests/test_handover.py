"""What the handover does to stay cheap: every experiment pays one export and one sealed load.

The program a run hands over carries no Python stack per operator (tracing it cost a quarter
of an export); saving it skips torch's self-test of its canonical form (a deep copy of the
graph whose result torch throws away); and loading asks `typing` for each schema class's hints
once per process instead of once per dataclass in the file. None of it may change what the
program computes, nor, for the skipped self-test, a byte of the file.
"""

import hashlib
import json
import typing
import zipfile

import torch
import torch.fx.config
from torch._export.serde import serialize as torch_serde

import autolab.harness.handover as handover
from autolab.harness.handover import EXPORT_BATCH, MODEL_FILE, export_model, load_model
from autolab.recipes import gpt

VOCAB, CONTEXT = 27, 32


def handed_over_gpt(run_dir):
    torch.manual_seed(0)
    model = gpt.GPT(VOCAB, depth=2, dim=32, head_dim=16, seq_len=16, context_len=CONTEXT)
    export_model(model.eval(), CONTEXT, VOCAB, run_dir)
    return model


def graph_nodes(archive_path) -> list[dict]:
    with zipfile.ZipFile(archive_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("models/model.json"))
        program = json.loads(archive.read(name))
    return program["graph_module"]["graph"]["nodes"]


def test_the_program_carries_no_python_stack_and_the_setting_is_put_back(tmp_path):
    before = torch.fx.config.do_not_emit_stack_traces
    handed_over_gpt(tmp_path)
    nodes = graph_nodes(tmp_path / MODEL_FILE)
    assert len(nodes) > 20  # a real graph, so the check below looked at something
    assert not [n["name"] for n in nodes if n["metadata"].get("stack_trace")]
    assert torch.fx.config.do_not_emit_stack_traces == before


def archive_digests(archive_path) -> dict[str, str]:
    """Each entry's digest, named without the archive's own folder (the file's stem)."""
    with zipfile.ZipFile(archive_path) as archive:
        return {
            info.filename.split("/", 1)[1]: hashlib.sha256(archive.read(info)).hexdigest()
            for info in archive.infolist()
        }


def test_saving_skips_the_canonical_form_test_and_writes_the_same_bytes(tmp_path, monkeypatch):
    real = torch_serde.canonicalize
    tested = []
    monkeypatch.setattr(
        torch_serde, "canonicalize", lambda *a, **k: tested.append(1) or real(*a, **k)
    )
    (tmp_path / "ours").mkdir()
    model = handed_over_gpt(tmp_path / "ours")
    assert tested == []  # skipped while autolab saved
    example = torch.zeros((EXPORT_BATCH, CONTEXT), dtype=torch.long)
    with torch.no_grad(), handover._without_stack_traces():
        program = torch.export.export(model.eval(), (example,))
    torch.export.save(program, tmp_path / "torch.pt2")
    assert tested == [1]  # torch's own save runs the test: the spy sees it, and it is back
    ours = archive_digests(tmp_path / "ours" / MODEL_FILE)
    assert len(ours) > 10 and ours == archive_digests(tmp_path / "torch.pt2")


def test_a_second_load_asks_typing_for_no_hints_and_computes_the_same(tmp_path, monkeypatch):
    model = handed_over_gpt(tmp_path)
    first, _ = load_model(tmp_path)  # fills the hints of every schema class this graph uses
    asked = []
    real = typing.get_type_hints
    monkeypatch.setattr(typing, "get_type_hints", lambda *a, **k: asked.append(a) or real(*a, **k))
    second, _ = load_model(tmp_path)
    assert asked == []  # without the memo: 3,303 times for this 2-block graph
    tokens = torch.randint(0, VOCAB, (3, CONTEXT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(tokens)
        assert torch.allclose(first(tokens), expected, atol=1e-5)
        assert torch.allclose(second(tokens), expected, atol=1e-5)


def test_remembered_hints_are_typing_s_own():
    from torch._export.serde import schema

    cached = handover._TypingWithCachedHints()
    for cls in (schema.Node, schema.Graph, schema.Argument, schema.TensorMeta):
        hints = cached.get_type_hints(cls, globalns=vars(schema))
        assert hints == typing.get_type_hints(cls, globalns=vars(schema))
        assert cached.get_type_hints(cls, globalns=vars(schema)) is hints
    assert cached.Annotated is typing.Annotated  # everything else is typing itself
