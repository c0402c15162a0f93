"""Handing the trained model over to autolab: a self-contained exported program.

The experiment's model is exported with `torch.export` (graph + weights, no Python source) into
the run directory. Whoever loads it (the sealed evaluator, `autolab sample`) runs only autolab
code and never imports the workspace's train.py. The program maps token ids (1, T) or (B, T)
with any T from 1 to `context_len` to logits (B, T, vocab).
"""

import json
from pathlib import Path

import torch

MODEL_FILE = "model.pt2"
MODEL_INFO_FILE = "model.json"


def export_model(model: torch.nn.Module, context_len: int, vocab_size: int, run_dir: Path) -> Path:
    """Export `model` for sequences of 1..context_len tokens; returns the file written."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    example = torch.zeros((2, min(context_len, 8)), dtype=torch.long, device=device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    if context_len > 1:
        seq = torch.export.Dim("seq", min=1, max=context_len)
        dynamic_shapes = ({0: batch, 1: seq},)
    else:
        example = example[:, :1]
        dynamic_shapes = ({0: batch},)
    try:
        with torch.no_grad():
            program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
    finally:
        model.train(was_training)
    path = Path(run_dir) / MODEL_FILE
    tmp = path.with_name("model.partial.pt2")  # torch.export.save wants the .pt2 suffix
    torch.export.save(program, tmp)
    tmp.replace(path)
    info = {"context_len": context_len, "vocab_size": vocab_size, "device": str(device)}
    (Path(run_dir) / MODEL_INFO_FILE).write_text(json.dumps(info))
    return path


def load_model(run_dir: Path, device: str = "cpu"):
    """The exported program as a callable module on `device`, plus its info dict."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / MODEL_INFO_FILE).read_text())
    program = torch.export.load(run_dir / MODEL_FILE)
    module = program.module()
    module.to(device)
    return module, info
