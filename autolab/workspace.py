"""Workspaces: a git repository holding train.py, program.md and autolab.toml.

train.py is the one file that changes; autolab.toml holds the workspace's settings, each
documented once in SETTINGS_TEMPLATE; program.md is the brief for a human or an agent.
"""

import json
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autolab import gitrepo
from autolab.durations import format_duration, parse_duration
from autolab.errors import UsageError
from autolab.recipes import recipe_source

CONFIG_FILE = "autolab.toml"
TRAIN_FILE = "train.py"
PROGRAM_FILE = "program.md"
STATE_DIR = ".autolab"  # runs, ledger, results; ignored by git
STOP_FILE = "stop"  # `autolab stop` creates .autolab/stop; a research session ends after recording

SETTINGS_TEMPLATE = """\
# autolab workspace settings. The research loop never changes this file.

[data]
dataset = {dataset}      # names | shakespeare | tinyshakespeare | abc | tinystories | a local path
tokenizer = {tokenizer}  # char | byte | bpe:N (byte-level BPE with N tokens)
source = {source}        # a local file or folder to read the dataset from ("" = its usual source)
secret_split = false     # true: validation documents picked with a secret (autolab prepare -h)

[train]
recipe = {recipe}        # the template train.py started from
budget = {budget}        # training time per run: 30s, 5m, 1h
device = {device}        # cpu | cuda: what train.py was sized for (autolab init --device), runs on
seed = 0                 # seed of `autolab train`; research sessions vary it per run
"""

GITIGNORE = """\
.autolab/
results.tsv
__pycache__/
"""


@dataclass
class Workspace:
    root: Path
    dataset: str
    tokenizer: str
    source: str | None
    recipe: str
    budget_seconds: float
    device: str
    seed: int
    secret_split: bool = False
    settings: dict = field(default_factory=dict)  # the whole autolab.toml, for other tables

    @property
    def train_py(self) -> Path:
        return self.root / TRAIN_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"


def load_workspace(directory: str | Path = ".") -> Workspace:
    root = Path(directory).resolve()
    config_path = root / CONFIG_FILE
    if not config_path.is_file():
        raise UsageError(f"{root} is not an autolab workspace: run `autolab init DIR` first")
    try:
        settings = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{config_path}: not valid TOML ({err}); fix or recreate it") from err
    data, train = settings.get("data", {}), settings.get("train", {})
    return Workspace(
        root=root,
        dataset=str(data.get("dataset", "names")),
        tokenizer=str(data.get("tokenizer", "char")),
        source=str(data.get("source") or "") or None,
        recipe=str(train.get("recipe", "gpt")),
        budget_seconds=parse_duration(train.get("budget", "60s")),
        device=str(train.get("device", "auto")),
        seed=int(train.get("seed", 0)),
        secret_split=bool(data.get("secret_split", False)),
        settings=settings,
    )


def program_text(dataset: str, budget: str) -> str:
    return (
        (Path(__file__).parent / "recipes" / "program.md")
        .read_text()
        .format(dataset=dataset, budget=budget)
    )


def init_workspace(
    directory: str | Path,
    dataset: str = "names",
    source: str | None = None,
    tokenizer: str = "char",
    recipe: str = "gpt",
    budget: str = "60s",
    device: str = "cpu",
) -> Path:
    """Create a workspace with its first commit. Refuses to touch a non-empty directory.

    `device` (auto | cpu | cuda; auto: CUDA when torch sees it now) is what train.py is sized
    for; autolab.toml records it, and runs use it unless told otherwise.
    """
    root = Path(directory).resolve()
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} is not empty: give a new directory name to `autolab init`")
    from autolab.data.sources import dataset_setting  # numpy and friends: only when needed

    budget_text = format_duration(parse_duration(budget))
    dataset = dataset_setting(dataset)
    if source and not Path(source).exists():
        raise UsageError(f"{source} does not exist: give an existing file or folder to --from")
    device = sizing_device(device)
    train_source = recipe_source(recipe, device)  # raises UsageError for an unknown recipe
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / TRAIN_FILE).write_text(train_source)
        (root / PROGRAM_FILE).write_text(program_text(dataset, budget_text))
        (root / CONFIG_FILE).write_text(
            SETTINGS_TEMPLATE.format(
                dataset=_toml_str(dataset),
                tokenizer=_toml_str(tokenizer),
                source=_toml_str(str(Path(source).resolve()) if source else ""),
                recipe=_toml_str(recipe),
                budget=_toml_str(budget_text),
                device=_toml_str(device),
            )
        )
        (root / ".gitignore").write_text(GITIGNORE)
        gitrepo.git(root, "init", "-q", "-b", "main")
        gitrepo.commit_all(root, f"autolab init: {recipe} recipe on {dataset}, sized for {device}")
    except BaseException:
        # Nothing half-made stays behind.
        if created:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for child in root.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    from autolab.sandbox import compile_cache

    # Its runs may add to torch.compile's carried cache even after autolab's recipe changes.
    compile_cache.remember_recipe(train_source)
    return root


def sizing_device(requested: str) -> str:
    """cpu | cuda for `autolab init --device` (auto | cpu | cuda | cuda:N)."""
    if requested == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = requested.split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {requested!r}: use auto, cpu or cuda")
    return kind


def sizing_note(workspace: Workspace, device: str) -> str | None:
    """One line when a run's device is not the one train.py was sized for, else None."""
    sized_for, kind = workspace.device.split(":")[0], device.split(":")[0]
    if sized_for not in ("cpu", "cuda") or sized_for == kind:  # "auto": a workspace from before
        return None
    return (
        f"train.py was sized for {sized_for} (autolab.toml) but runs on {kind}; for constants "
        f"sized for {kind}, start a workspace with `autolab init DIR --device {kind}`"
    )


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def prepare_data(workspace: Workspace):
    """The workspace's prepared data (from the cache when it is there).

    Finding the cache entry means reading and hashing the source (a second or two for the
    packaged names), so the workspace remembers which entry its settings led to, keyed by the
    settings and the size and modification time of a local source; a changed file misses.
    """
    from autolab.data import Prepared, prepare, sealed_val_path
    from autolab.data.prepare import is_complete
    from autolab.paths import autolab_home

    memo_path = workspace.state_dir / "data.json"
    key = {
        "dataset": workspace.dataset,
        "tokenizer": workspace.tokenizer,
        "source": workspace.source,
        "secret_split": workspace.secret_split,
        "home": str(autolab_home()),
        "fingerprint": _fingerprint(workspace.source or workspace.dataset),
    }
    if memo_path.is_file():
        memo = json.loads(memo_path.read_text())
        data_dir = Path(memo.get("data_dir", ""))
        if memo.get("key") == key and is_complete(data_dir):  # and of this format
            meta = json.loads((data_dir / "meta.json").read_text())
            return Prepared(data_dir, sealed_val_path(data_dir), meta, cached=True)
    prepared = prepare(
        workspace.dataset,
        workspace.tokenizer,
        source_path=workspace.source,
        secret_split=workspace.secret_split,
    )
    workspace.state_dir.mkdir(exist_ok=True)
    tmp = memo_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "data_dir": str(prepared.data_dir)}))
    tmp.replace(memo_path)
    return prepared


def _fingerprint(source: str) -> list:
    """Size and modification time of a local source's files; [] for a named dataset."""
    path = Path(source).expanduser()
    if not path.exists():
        return []
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def new_run_dir(workspace: Workspace, name: str) -> Path:
    run_dir = workspace.runs_dir / name
    run_dir.mkdir(parents=True, exist_ok=False)
    (workspace.state_dir / "last_run").write_text(str(run_dir))
    return run_dir


def last_run_dir(workspace: Workspace) -> Path:
    marker = workspace.state_dir / "last_run"
    if not marker.is_file():
        raise UsageError(f"no runs in {workspace.root} yet: run `autolab train` first")
    return Path(marker.read_text().strip())
