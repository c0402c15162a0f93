"""The tracker exporters against the real packages: a real ledger and git repo, the events a
session records replayed through each listener, and the tracker's own files read back."""

import json
import struct
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

from autolab.errors import UsageError
from autolab.exporters import exporters_from_flags
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord

TAG = "nov23"
BASE_SOURCE = "LR = 0.01\nSTEPS = 10\n"
CANDIDATE_SOURCE = "LR = 0.02\nSTEPS = 10\n"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def commit(repo: Path, source: str, message: str) -> str:
    (repo / "train.py").write_text(source)
    git(repo, "add", "train.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def curve(losses: list[float | None]) -> list[dict]:
    """Metric rows as the harness writes them; None stands for a NaN loss."""
    return [
        {"step": 10 * (i + 1), "progress": (i + 1) / len(losses), "loss": loss,
         "lr": 0.02, "tokens_per_sec": 1000.0 + i, "time": 1_700_000_000.0 + i}
        for i, loss in enumerate(losses)
    ]  # fmt: skip


class Replay:
    """Records what a ResearchSession records, in its order, and calls the listener the way
    its Recorder does. `session` is the small stand-in the listeners read."""

    def __init__(self, tmp_path: Path, listener):
        repo = tmp_path / "workspace"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        self.base = commit(repo, BASE_SOURCE, "baseline")
        self.candidate = commit(repo, CANDIDATE_SOURCE, "LR 0.02")
        self.ledger = Ledger.for_workspace(repo)
        session_id = self.ledger.start_session(TAG, f"autolab/{TAG}", "search", 60, "cpu", {})
        self.session = SimpleNamespace(
            ledger=self.ledger,
            session_id=session_id,
            options=SimpleNamespace(tag=TAG),
            repo=repo,
            workspace=SimpleNamespace(root=repo, state_dir=repo / ".autolab"),
            standings=lambda: self.ledger.standings(TAG),
        )
        self.listener = listener

    def event(self, kind, message, number=None, data=None) -> None:
        event_id = self.ledger.add_event(
            kind, message, session_id=self.session.session_id, number=number, data=data
        )
        self.listener(self.ledger.events(after_id=event_id - 1, limit=1)[0], self.session)

    def experiment(self, number, kind, sha, parent, description, rows, result=None, params=None):
        self.ledger.add_experiment(
            ExperimentRecord(number, self.session.session_id, kind, sha, description,
                             parent_commit=parent, seed=number, params=params or {})
        )  # fmt: skip
        self.event("created", f"exp {number}: {description}", number)
        self.event("started", f"exp {number} started", number)
        for i in range(0, len(rows), 4):  # the loop flushes metrics four rows at a time
            batch = rows[i : i + 4]
            self.ledger.add_metrics(number, batch)
            self.event("step", f"exp {number} step", number, {"step": batch[-1]["step"]})
        if result is None:
            return
        if result.val_bpb is not None:
            self.event("evaluation", "sealed", number, {"val_bpb": result.val_bpb})
        self.event("finished", f"exp {number} finished", number, {"status": "ok"})
        self.ledger.add_result(number, result)
        self.event("verdict", f"exp {number} {result.status}", number,
                   {"status": result.status, "val_bpb": result.val_bpb})  # fmt: skip

    def session_of_four(self) -> None:
        """A baseline kept, a candidate kept (with a NaN loss), one crashed, one stopped."""
        self.event("session_started", "session 1")
        self.experiment(
            1,
            "baseline",
            self.base,
            "",
            "baseline (seed 1)",
            curve([3.0, 2.5, 2.2, 2.0, 1.9, 1.8]),
            ResultRecord("keep", "", 1.60),
        )
        self.ledger.record_noise(self.session.session_id, 1.60, 0.0, 1)  # the reference
        self.experiment(
            2,
            "candidate",
            self.candidate,
            self.base,
            "raise LR to 0.02",
            curve([3.0, None, 2.1, 1.9, 1.7, 1.6]),
            ResultRecord("keep", "beats best", 1.55),
            params={"LR": 0.02},
        )
        self.event("alert", "new best", 2, {"alert": "new_best", "val_bpb": 1.55})
        self.experiment(
            3,
            "candidate",
            self.candidate,
            self.base,
            "crashes",
            curve([3.0, 9.0]),
            ResultRecord("crash", "NaN loss"),
        )
        self.experiment(4, "candidate", self.candidate, self.base, "stopped", curve([3.0]))
        self.ledger.end_session(self.session.session_id, "cancelled", "stopped by the user")
        self.event("session_ended", "session cancelled: stopped by the user")


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autolab.exporters.tensorboard_export import TensorBoardExporter

    logdir = tmp_path / "tb"
    replay = Replay(tmp_path, TensorBoardExporter(logdir, tmp_path / "workspace"))
    replay.session_of_four()

    runs = sorted(p.name for p in (logdir / TAG).iterdir())
    assert runs == ["exp0001", "exp0002", "exp0003", "exp0004"]

    def read(run: str) -> EventAccumulator:
        events = EventAccumulator(str(logdir / TAG / run), size_guidance={"tensors": 0})
        events.Reload()
        return events

    def text(events, tag) -> str:
        return events.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()

    two = read("exp0002")
    loss = [(e.step, round(e.value, 5)) for e in two.Scalars("loss")]  # stored as float32
    assert loss == [(10, 3.0), (30, 2.1), (40, 1.9), (50, 1.7), (60, 1.6)]  # NaN left out
    assert [e.step for e in two.Scalars("tokens_per_sec")] == [10, 20, 30, 40, 50, 60]
    assert [(e.step, round(e.value, 5)) for e in two.Scalars("val_bpb")] == [(60, 1.55)]
    # Δ from the standings: score - the reference, negative is better
    assert [(e.step, round(e.value, 5)) for e in two.Scalars("delta")] == [(60, -0.05)]
    summary = text(two, "summary")
    assert "| description | raise LR to 0.02 |" in summary and "| status | keep |" in summary
    assert "| LR | 0.02 |" in summary
    assert "-LR = 0.01\n+LR = 0.02" in text(two, "train.py.diff")

    one, three, four = read("exp0001"), read("exp0003"), read("exp0004")
    assert "train.py.diff/text_summary" not in one.Tags()["tensors"]  # a baseline has no diff
    assert "val_bpb" not in three.Tags()["scalars"]
    assert "| reason | NaN loss |" in text(three, "summary")
    assert "| status | running |" in text(four, "summary")  # closed when the session ended


def test_mlflow_runs(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from autolab.exporters.mlflow_export import MlflowExporter

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) must not be used
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    replay = Replay(tmp_path, MlflowExporter(uri, tmp_path / "workspace"))
    replay.session_of_four()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(TAG)
    runs = {
        run.data.tags["mlflow.runName"]: run
        for run in client.search_runs([experiment.experiment_id])
    }
    parent = runs.pop("session 1")  # the session's run, each experiment's nested under it
    assert sorted(runs) == ["1 baseline (seed 1)", "2 raise LR to 0.02", "3 crashes", "4 stopped"]
    assert {run.data.tags["mlflow.parentRunId"] for run in runs.values()} == {parent.info.run_id}
    assert (parent.info.status, parent.data.tags["status"]) == ("KILLED", "cancelled")
    status = {name: (run.info.status, run.data.tags["status"]) for name, run in runs.items()}
    assert list(status.values()) == [("KILLED", "running"), ("FAILED", "crash"),
                                     ("FINISHED", "keep"), ("FINISHED", "keep")]  # fmt: skip

    two = runs["2 raise LR to 0.02"]
    assert two.data.params["LR"] == "0.02"
    assert two.data.params["commit"] == replay.candidate
    assert two.data.params["parent_commit"] == replay.base
    assert two.data.tags["description"] == "raise LR to 0.02"
    assert two.data.tags["mlflow.note.content"] == "raise LR to 0.02"
    assert two.data.metrics["val_bpb"] == pytest.approx(1.55)
    assert two.data.metrics["delta"] == pytest.approx(-0.05)  # score - the reference
    history = client.get_metric_history(two.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(10, 3.0), (30, 2.1), (40, 1.9), (50, 1.7),
                                                    (60, 1.6)]  # fmt: skip
    assert [m.step for m in client.get_metric_history(two.info.run_id, "val_bpb")] == [60]
    diff = Path(client.download_artifacts(two.info.run_id, "train.py.diff", str(tmp_path)))
    assert "-LR = 0.01\n+LR = 0.02" in diff.read_text()
    assert (tmp_path / "store" / "mlartifacts").is_dir() and not (tmp_path / "mlruns").exists()


BLOCK = 32 * 1024


def wandb_records(path: Path):
    """The protobuf records of a .wandb file. It is a LevelDB-style log: a 7-byte file header,
    then in 32 KiB blocks chunks of (crc32 u32, length u16, type u8) + data, where type 1 is a
    whole record and 2, 3, 4 are its first, middle and last parts."""
    from wandb.proto import wandb_internal_pb2

    data, pos, parts = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            pos += BLOCK - pos % BLOCK
            continue
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record
            parts = b""


def read_wandb_run(run_dir: Path) -> dict:
    (log,) = run_dir.glob("*.wandb")
    run = {"history": [], "summary": {}, "files": [], "exit": None}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["name"], run["group"] = record.run.display_name, record.run.run_group
            run["notes"], run["tags"] = record.run.notes, list(record.run.tags)
            run["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
        elif kind == "history":
            run["history"].append({i.nested_key[0]: json.loads(i.value_json)
                                   for i in record.history.item})  # fmt: skip
        elif kind == "summary":
            for u in record.summary.update:
                run["summary"][u.key or ".".join(u.nested_key)] = json.loads(u.value_json)
        elif kind == "files":
            run["files"] += [f.path for f in record.files.files]
        elif kind == "exit":
            run["exit"] = record.exit.exit_code
    return run


def test_wandb_offline_runs(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from autolab.exporters.wandb_export import WandbExporter

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb-dir").mkdir()
    replay = Replay(tmp_path, WandbExporter("autolab-test"))
    replay.session_of_four()

    run_dirs = sorted((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    runs = {run["name"]: (run, path) for path in run_dirs for run in [read_wandb_run(path)]}
    assert sorted(runs) == ["1 baseline (seed 1)", "2 raise LR to 0.02", "3 crashes", "4 stopped"]
    assert {run["group"] for run, _ in runs.values()} == {TAG}
    assert [runs[n][0]["exit"] for n in sorted(runs)] == [0, 0, 1, 1]

    two, two_dir = runs["2 raise LR to 0.02"]
    assert two["notes"] == "raise LR to 0.02" and two["tags"] == ["candidate"]
    config = two["config"]
    assert (config["LR"], config["seed"], config["kind"]) == (0.02, 2, "candidate")
    assert (config["commit"], config["parent_commit"]) == (replay.candidate, replay.base)
    assert [(h["_step"], h.get("loss")) for h in two["history"]] == [
        (10, 3.0), (20, None), (30, 2.1), (40, 1.9), (50, 1.7), (60, 1.6)]  # fmt: skip
    assert two["summary"]["status"] == "keep" and two["summary"]["val_bpb"] == 1.55
    assert two["summary"]["delta"] == pytest.approx(-0.05)  # score - the reference
    assert "train.py.diff" in two["files"]
    assert "+LR = 0.02" in (two_dir / "files" / "train.py.diff").read_text()
    assert "train.py.diff" not in runs["1 baseline (seed 1)"][0]["files"]
    assert runs["3 crashes"][0]["summary"]["reason"] == "NaN loss"


def test_wandb_online_without_credentials_is_refused(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from autolab.exporters.wandb_export import WandbExporter

    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    with pytest.raises(UsageError, match="no W&B credentials"):
        WandbExporter()


@pytest.mark.parametrize(
    ("flag", "value", "module", "extra"),
    [
        ("wandb", "p", "wandb", "wandb"),
        ("mlflow", "sqlite:///{tmp}/x.db", "mlflow", "mlflow"),
        ("tensorboard", "{tmp}/tb", "tensorboard", "tensorboard"),
    ],
)
def test_a_missing_package_stops_the_session_before_it_starts(
    tmp_path, monkeypatch, flag, value, module, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    args = Namespace(workspace=str(tmp_path), wandb=None, mlflow=None, tensorboard=None)
    setattr(args, flag, value.format(tmp=tmp_path / "elsewhere"))
    with pytest.raises(UsageError) as err:
        exporters_from_flags(args)
    assert str(err.value) == f"--{flag} needs the {extra} package: pip install 'autolab[{extra}]'"
    assert not (tmp_path / "elsewhere").exists()


def test_local_output_inside_the_workspace_is_refused(tmp_path):
    pytest.importorskip("tensorboard")
    args = Namespace(workspace=str(tmp_path), wandb=None, mlflow=None, tensorboard=None)
    args.tensorboard = str(tmp_path / "tb")
    with pytest.raises(UsageError, match="inside the workspace"):
        exporters_from_flags(args)
    args.tensorboard = str(tmp_path / ".autolab" / "tb")
    (exporter,) = exporters_from_flags(args)
    assert repr(exporter) == f"TensorBoardExporter({str(tmp_path / '.autolab' / 'tb')!r})"
    assert exporters_from_flags(Namespace(workspace=".", wandb=None, mlflow=None,
                                          tensorboard=None)) == []  # fmt: skip


def test_a_real_session_exports_every_experiment(tmp_path, autolab_home):
    """The loop's own events, in its own order: a baseline and one candidate, 1.5 s each."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autolab.research.loop import ResearchSession, SessionOptions
    from autolab.research.policy import Policy
    from autolab.research.search import SearchResearcher
    from autolab.workspace import load_workspace

    root = tmp_path / "ws"
    done = subprocess.run(
        [sys.executable, "-m", "autolab", "init", str(root), "--recipe", "mlp", "--budget", "1.5s"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    args = Namespace(workspace=str(root), wandb=None, mlflow=None,
                     tensorboard=str(root / ".autolab" / "tb"))  # fmt: skip
    # Greedy: a win inside the noise band would add a re-check run, by chance.
    options = SessionOptions(tag="t1", budget_seconds=1.5, max_experiments=1, baseline_runs=1,
                             policy=Policy(greedy=True))  # fmt: skip
    with Ledger.for_workspace(root) as ledger:
        session = ResearchSession(load_workspace(root), SearchResearcher(seed=0), options, ledger)
        session.start()
        session.listeners.extend(exporters_from_flags(args))
        assert session.run() == "succeeded"
        views = ledger.experiments()
        notes = [e.message for e in ledger.events() if e.kind == "note"]
    assert not [n for n in notes if "listener" in n]
    assert [v.kind for v in views] == ["baseline", "candidate"]
    assert all(v.status != "running" for v in views)
    for view in views:
        events = EventAccumulator(str(root / ".autolab" / "tb" / "t1" / f"exp{view.number:04d}"))
        events.Reload()
        assert len(events.Scalars("loss")) >= 1
        assert events.Scalars("val_bpb")[0].value == pytest.approx(view.val_bpb, rel=1e-6)
