"""Sampling text from a handed-over model, with autolab's code only (never train.py)."""

import logging
from pathlib import Path

import torch

from autolab.data import load_tokenizer
from autolab.errors import UsageError
from autolab.harness.data import read_meta
from autolab.harness.handover import MODEL_FILE, load_model
from autolab.harness.program_check import RefusedProgram


def load_run(run_dir: Path, data_dir: Path, device: str = "cpu", for_sampling: bool = False):
    """The exported model, its info, the tokenizer and the data's metadata of a finished run;
    `for_sampling`: the program meant for generating (handover.load_model)."""
    if not (Path(run_dir) / MODEL_FILE).is_file():
        return None
    # On a damaged archive torch.export.load logs a traceback before it raises; the error
    # below says it in one line.
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.ERROR)
    try:
        model, info = load_model(run_dir, device, for_sampling)
    except RefusedProgram as err:
        raise UsageError(f"the model in {run_dir} is refused: {err}") from err
    except Exception as err:  # torch.export.load raises many kinds on a damaged archive
        said = str(err).strip()
        first = f": {said.splitlines()[0][:200]}" if said else ""
        raise UsageError(
            f"the model in {run_dir} cannot be loaded ({type(err).__name__}{first}): the file "
            "is damaged or was written by another torch version; train it again"
        ) from err
    finally:
        export_log.setLevel(level)
    return model, info, load_tokenizer(data_dir), read_meta(data_dir)


@torch.no_grad()
def generate(
    model,
    context_len: int,
    prompt_ids: list[int],
    num_samples: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    banned_ids: tuple[int, ...] = (),
) -> list[list[int]]:
    """`num_samples` continuations of `prompt_ids`, generated together as one batch."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor([prompt_ids] * num_samples, dtype=torch.long)
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_len:])[:, -1, :].float()  # (B, V)
        logits[:, list(banned_ids)] = float("-inf")
        if temperature <= 0:
            next_ids = logits.argmax(dim=-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            next_ids = torch.multinomial(probs, 1, generator=generator)
        idx = torch.cat([idx, next_ids], dim=1)
    return [row[len(prompt_ids) :] for row in idx.tolist()]


def sample_texts(
    run_dir: Path,
    data_dir: Path,
    num_samples: int = 5,
    prompt: str = "",
    temperature: float = 1.0,
    top_k: int | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Samples as text. Data of one short document per line (names) gives one document per
    sample, cut at the line end; other data gives passages of `max_new_tokens` tokens."""
    loaded = load_run(run_dir, data_dir, for_sampling=True)
    if loaded is None:
        return []
    model, info, tokenizer, meta = loaded
    separator = meta.get("separator", "\n")
    one_per_line = separator == "\n"
    # With no prompt, start where a document starts: right after a separator.
    prompt_ids = tokenizer.encode(prompt) if prompt else tokenizer.encode(separator)
    if max_new_tokens is None:
        max_new_tokens = 40 if one_per_line else 300
    # The char tokenizer's "unknown character" id is not text: never sample it.
    banned = (tokenizer.UNKNOWN,) if hasattr(tokenizer, "UNKNOWN") else ()
    rows = generate(
        model, int(info["context_len"]), prompt_ids, num_samples, max_new_tokens,
        temperature, top_k, seed, banned,
    )  # fmt: skip
    texts = []
    for row in rows:
        text = tokenizer.decode(row)
        if one_per_line:
            text = text.split("\n", 1)[0]
        texts.append(prompt + text if prompt else text)
    return texts
