"""`autolab export` end to end: a real research session (the mlp recipe, 1.5 s per experiment),
then the ledger sent to TensorBoard, MLflow and W&B (offline) by the command, and each
tracker's own files read back."""

import os
import subprocess
import sys

import pytest
from test_exporters import read_wandb_run

from autolab.track.ledger import Ledger

TAG = "t1"


def autolab(*args, env):
    return subprocess.run([sys.executable, "-m", "autolab", *args], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def researched(tmp_path_factory):
    """A workspace with one finished session: a baseline and one candidate."""
    tmp = tmp_path_factory.mktemp("export")
    env = {**os.environ, "AUTOLAB_HOME": str(tmp / "home")}
    ws = tmp / "ws"
    assert autolab("init", str(ws), "--recipe", "mlp", "--budget", "1.5s", env=env).returncode == 0
    # Greedy: a win inside the noise band cannot add a re-check row; two rows exactly.
    done = autolab("research", "--no-prune", "-C", str(ws), "--tag", TAG, "--baseline-runs", "1",
                   "--max-experiments", "1", "--confirm", "0", "--greedy", env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp, ws, env


def test_export_sends_a_finished_session_to_all_three(researched):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    tmp, ws, env = researched
    env = {**env, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp / "wandb"), "WANDB_SILENT": "true"}
    (tmp / "wandb").mkdir()
    uri = f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}"
    (tmp / "mlflow").mkdir()
    done = autolab("export", "-C", str(ws), "--tensorboard", str(tmp / "tb"), "--mlflow", uri,
                   "--wandb", "export-test", "--samples", "2", env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent 2 experiments of session 1 (t1)" in done.stdout
    with Ledger.for_workspace(ws) as ledger:
        base, candidate = ledger.experiments()
    assert (base.kind, candidate.kind) == ("baseline", "candidate")

    # TensorBoard: curves, the sealed score, HParams with the candidate's params, samples.
    run = EventAccumulator(str(tmp / "tb" / TAG / "exp0002"), size_guidance={"tensors": 0})
    run.Reload()
    assert len(run.Scalars("loss")) >= 1
    assert run.Scalars("val_bpb")[0].value == pytest.approx(candidate.val_bpb, rel=1e-6)
    content = run.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["status"].string_value == candidate.status
    assert hparams["kind"].string_value == "candidate"
    (name, value), *_ = candidate.params.items()
    assert hparams[name].number_value == pytest.approx(value)
    samples = run.Tensors("samples/text_summary")[0].tensor_proto.string_val[0].decode()
    assert samples.count("```") == 4  # two samples, each in a code block
    assert "train.py.diff/text_summary" in run.Tags()["tensors"]

    # MLflow: the session's run, the experiments nested under it with their own times.
    client = MlflowClient(tracking_uri=uri)
    runs = {
        r.data.tags["mlflow.runName"]: r
        for r in client.search_runs([client.get_experiment_by_name(TAG).experiment_id])
    }
    parent = runs.pop("session 1")
    assert parent.data.tags["status"] == "succeeded" and parent.info.status == "FINISHED"
    assert len(runs) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {parent.info.run_id}
    two = runs[f"2 {candidate.description}"]
    assert two.info.start_time == int(1000 * candidate.created)
    assert two.data.metrics["val_bpb"] == pytest.approx(candidate.val_bpb)
    assert two.data.tags["status"] == candidate.status
    artifacts = {a.path for a in client.list_artifacts(two.info.run_id)}
    assert {"samples.txt", "train.py.diff"} <= artifacts

    # W&B offline: one run per experiment, grouped by the session's tag, with a samples table.
    wandb_runs = [read_wandb_run(p) for p in sorted((tmp / "wandb" / "wandb").glob("offline-*"))]
    assert sorted(r["name"] for r in wandb_runs) == [f"1 {base.description}",
                                                     f"2 {candidate.description}"]  # fmt: skip
    assert {r["group"] for r in wandb_runs} == {TAG}
    assert all(any(f.startswith("media/table/samples") for f in r["files"]) for r in wandb_runs)
    assert {r["summary"]["val_bpb"] for r in wandb_runs} == {base.val_bpb, candidate.val_bpb}

    # Exported twice into the same TensorBoard directory would double every curve: refused.
    again = autolab("export", "-C", str(ws), "--tensorboard", str(tmp / "tb"), "--samples", "0",
                    env=env)  # fmt: skip
    assert again.returncode == 2 and "already holds exp 1's events" in again.stderr


def test_export_says_what_it_needs(researched):
    tmp, ws, env = researched
    done = autolab("export", "-C", str(ws), env=env)
    assert done.returncode == 2 and "--wandb, --mlflow URI or --tensorboard DIR" in done.stderr
    done = autolab("export", "-C", str(ws), "--session", "7", "--tensorboard", str(tmp / "x"),
                   env=env)  # fmt: skip
    assert done.returncode == 2 and "no session 7 in the ledger (sessions: 1)" in done.stderr
    empty = tmp / "empty"
    assert autolab("init", str(empty), "--recipe", "mlp", env=env).returncode == 0
    done = autolab("export", "-C", str(empty), "--tensorboard", str(tmp / "y"), env=env)
    assert done.returncode == 2 and "autolab research" in done.stderr
