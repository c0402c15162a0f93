"""The experiment page's surprisal panel: how surprised an experiment's model is by each token
of a text, and, against another experiment, where it did better or worse token by token.

The numbers are `autolab inspect --text ... --json`'s (`autolab.inspect.surprisal`), plus the
text scored and the experiment numbers. In a comparison A is the other experiment and B the
page's own, so `diff_bits` (B minus A) is negative where the page's recipe did better.

Blocking (torch, files): called from a worker thread, one request at a time. Loaded models are
kept, a few, the least recently used dropped first: a handed-over model never changes.
"""

import math
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from autolab.errors import UsageError
from autolab.harness.files import MODEL_FILE
from autolab.track.ledger import ExperimentView, Ledger
from autolab.workspace import Workspace

MAX_TEXT_CHARS = 20_000  # beyond this the page would draw more spans than anyone reads
DEFAULT_TEXT_BYTES = 600  # the start of the dev split scored when no text is given
MODELS_KEPT = 4


class RequestError(UsageError):
    """A request the person can fix; the page shows the message as one line."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def no_model_message(view: ExperimentView) -> str:
    """Why an experiment has no model to look at, in one line."""
    if view.status == "running":
        return f"exp {view.number} is still training: its model is handed over at the end"
    reason = f": {view.reason}" if view.reason else ""
    return f"exp {view.number} left no model ({view.status}{reason})"


def compare_choices(ledger: Ledger, view: ExperimentView, runs_dir: Path) -> dict:
    """The experiments the page can compare `view` with (those that left a model), and the
    default: its parent (the kept run of the commit it changed), else its session's best."""
    with_model = [
        v for v in ledger.experiments()
        if v.number != view.number and (runs_dir / str(v.number) / MODEL_FILE).is_file()
    ]  # fmt: skip
    numbers = {v.number for v in with_model}
    parents = [
        v for v in with_model
        if view.parent_commit and v.commit_sha == view.parent_commit and v.status == "keep"
        and v.number < view.number
    ]  # fmt: skip
    tag = next((s.tag for s in ledger.sessions() if s.id == view.session_id), None)
    best = ledger.standings(tag).best_number
    if parents:
        default = parents[-1].number
    elif best is not None and best in numbers:
        default = best
    else:
        default = None
    choices = [
        {"number": v.number, "status": v.status, "val_bpb": v.val_bpb,
         "description": v.description, "parent": v.number == default and bool(parents)}
        for v in reversed(with_model)
    ]  # fmt: skip
    return {"choices": choices, "default": default}


def default_text(data_dir: Path, tokenizer, meta: dict) -> str:
    """About DEFAULT_TEXT_BYTES from the start of the dev split (public held-out text, never the
    sealed val), ending after a whole document when one ends past the middle."""
    from autolab.data import read_tokens

    dev = np.asarray(read_tokens(data_dir / "dev.bin", meta)[:DEFAULT_TEXT_BYTES], dtype=np.int64)
    sizes = np.cumsum(tokenizer.token_bytes[dev])  # every token is at least one byte
    text = tokenizer.decode(dev[: int(np.searchsorted(sizes, DEFAULT_TEXT_BYTES)) + 1])
    separator = meta.get("separator", "\n")
    end = text.rfind(separator) if separator else -1
    return text[: end + len(separator)] if end > len(text) // 2 else text


class SurprisalPanel:
    """Scores texts under experiments' models for one workspace. Thread-safe."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._lock = threading.Lock()  # one scoring at a time: torch already uses every core
        self._models: OrderedDict[tuple[str, int], object] = OrderedDict()

    def score(self, ledger: Ledger | None, number: int, text: str | None, compare: int | None):
        """The page's numbers for `text` (None: the start of the dev split) under experiment
        `number`, compared with experiment `compare` when given. RequestError otherwise."""
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise RequestError(
                f"the text is {len(text):,} characters; the panel scores at most "
                f"{MAX_TEXT_CHARS:,}: shorten it, or use `autolab inspect --text FILE` for more",
                413,
            )
        if compare == number:
            raise RequestError(f"exp {number} compared with itself: pick another experiment")
        views = [self._with_model(ledger, n) for n in (number, compare) if n is not None]
        started = time.monotonic()
        with self._lock:
            return self._score(views, text, started)

    def _with_model(self, ledger: Ledger | None, number: int) -> ExperimentView:
        view = ledger.experiment(number) if ledger else None
        if view is None:
            raise RequestError(f"no experiment {number} in the ledger", 404)
        if not (self.workspace.runs_dir / str(number) / MODEL_FILE).is_file():
            raise RequestError(no_model_message(view), 409)
        return view

    def _score(self, views: list[ExperimentView], text: str | None, started: float) -> dict:
        from autolab.inspect.select import select_run
        from autolab.inspect.surprisal import comparison_json, score, surprisal_json
        from autolab.workspace import prepare_data

        data_dir = prepare_data(self.workspace).data_dir
        loaded = [self._load(select_run(self.workspace, str(v.number)), data_dir) for v in views]
        source = "given"
        if text is None:
            text, source = default_text(data_dir, loaded[0].tokenizer, loaded[0].meta), "dev"
        results = [score(run, text) for run in loaded]
        if len(loaded) == 1:
            out = surprisal_json(loaded[0].run, results[0])
            out.update(number=views[0].number, description=views[0].description)
        else:  # A: the other experiment, B: the page's own
            out = comparison_json(loaded[1].run, results[1], loaded[0].run, results[0])
            out["a"].update(number=views[1].number, description=views[1].description)
            out["b"].update(number=views[0].number, description=views[0].description)
        return {
            **out,
            "text": text,
            "text_source": source,
            "uniform_bits": math.log2(loaded[0].tokenizer.vocab_size),  # a uniform guess
            "seconds": round(time.monotonic() - started, 3),
        }

    def _load(self, selected, data_dir: Path):
        from autolab.inspect.select import load_selected

        model_file = selected.run_dir / MODEL_FILE
        key = (str(model_file), model_file.stat().st_mtime_ns)
        if key in self._models:
            self._models.move_to_end(key)
            loaded = self._models[key]
        else:
            try:
                loaded = load_selected(selected, data_dir)
            except UsageError as err:  # a damaged model, or one of another vocabulary
                raise RequestError(str(err), 409) from err
            self._models[key] = loaded
            while len(self._models) > MODELS_KEPT:
                self._models.popitem(last=False)
        loaded.run = selected  # today's label: its status may have changed since it was loaded
        return loaded
