"""results.tsv's pinned format, its round trip, and the `autolab results` command."""

import argparse
import json
import subprocess
import sys

import pytest

from autolab import cli
from autolab.commands import results
from autolab.errors import UsageError
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.track.results_tsv import (
    format_results_tsv,
    parse_results_tsv,
    write_results_tsv,
)

PINNED = (
    "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04\n"
    "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation\n"
    "d4e5f6g\t0.000000\t0.0\tcrash\tdouble model width (OOM)\n"
    "e5f6g7h\t0.000000\t0.0\tinterrupted\tmulti line  with a tab\n"
)


def fill(ledger):
    rows = [  # commit, kind, description, status, val_bpb, peak_memory_mb
        ("a1b2c3d", "baseline", "baseline", "keep", 0.9979, 45060.2),
        ("b2c3d4e", "candidate", "increase LR to 0.04", "keep", 0.9932, 45260.0),
        ("c3d4e5f", "candidate", "switch to GeLU activation", "discard", 1.005, 45060.2),
        ("d4e5f6g", "candidate", "double model width (OOM)", "crash", None, None),
        ("e5f6g7h", "candidate", "multi line\n with\ta tab", "interrupted", None, None),
        ("f6g7h8i", "candidate", "still running", None, None, None),
    ]
    session = ledger.start_session("t", "autolab/t", "search", 300, "cpu", {})
    ledger.record_noise(session, 0.9979, 0.0, 1)  # the reference: the one baseline run
    for number, (commit, kind, description, status, val_bpb, memory_mb) in enumerate(rows, 1):
        ledger.add_experiment(
            ExperimentRecord(number, session, kind, commit + "0" * 33, description)
        )
        if status is not None:
            result = ResultRecord(status, val_bpb=val_bpb, peak_memory_mb=memory_mb)
            result.wall_seconds = 330.0
            result.reason = "CUDA OOM" if status == "crash" else ""
            ledger.add_result(number, result)


@pytest.fixture
def workspace(tmp_path):
    with Ledger.for_workspace(tmp_path) as ledger:
        fill(ledger)
    return tmp_path


def test_format_is_pinned(workspace):
    with Ledger.for_workspace(workspace) as ledger:
        assert format_results_tsv(ledger.experiments()) == PINNED
        assert format_results_tsv([]) == "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def test_round_trip(workspace):
    path = workspace / "results.tsv"
    (workspace / "results.tsv").write_text("stale\n")
    with Ledger.for_workspace(workspace) as ledger:
        assert write_results_tsv(ledger, path) == path
    assert path.read_text() == PINNED
    assert [p.name for p in workspace.iterdir() if p.name.endswith(".tmp")] == []
    rows = parse_results_tsv(path.read_text())
    assert [r["status"] for r in rows] == ["keep", "keep", "discard", "crash", "interrupted"]
    assert rows[1] == {
        "commit": "b2c3d4e",
        "val_bpb": 0.9932,
        "memory_gb": 44.2,
        "status": "keep",
        "description": "increase LR to 0.04",
    }


def test_parse_refuses_what_is_not_results_tsv():
    with pytest.raises(ValueError, match="header"):
        parse_results_tsv("a\tb\n")
    with pytest.raises(ValueError, match="line 2"):
        parse_results_tsv("commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc\t1.0\n")


def run_command(workspace, tsv=False, json=False):
    args = argparse.Namespace(workspace=str(workspace), tsv=tsv, json=json, researcher=None)
    return results.run(args)


def test_command_outputs(workspace, capsys):
    assert run_command(workspace, tsv=True) == 0
    assert capsys.readouterr().out == PINNED

    assert run_command(workspace, json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["status"] for e in listed][-2:] == ["interrupted", "running"]
    assert listed[0]["val_bpb"] == 0.9979 and listed[3]["reason"] == "CUDA OOM"

    assert run_command(workspace) == 0
    table = capsys.readouterr().out
    assert "increase LR to 0.04" in table and "running" in table
    assert "-0.0047" in table  # 0.9932 against the best so far, 0.9979
    assert "+0.0118" in table  # the discarded 1.005 against 0.9932


def test_command_parser(workspace, capsys):
    parser = argparse.ArgumentParser(prog="autolab")
    results.register(parser.add_subparsers())
    args = parser.parse_args(["results", "--tsv", "--workspace", str(workspace)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == PINNED
    with pytest.raises(SystemExit):
        parser.parse_args(["results", "--tsv", "--json"])


def test_command_without_ledger(tmp_path):
    with pytest.raises(UsageError, match="no ledger in .*autolab research"):
        run_command(tmp_path)
    assert not (tmp_path / ".autolab").exists()  # looking does not create one


@pytest.mark.skipif("results" not in cli.COMMANDS, reason="`results` not wired into cli.py yet")
def test_cli_subprocess(workspace, tmp_path_factory):
    cmd = [sys.executable, "-m", "autolab", "results"]
    done = subprocess.run([*cmd, "--tsv", "--workspace", str(workspace)], capture_output=True)
    assert done.returncode == 0 and done.stdout.decode() == PINNED
    empty = tmp_path_factory.mktemp("empty")
    done = subprocess.run([*cmd, "--workspace", str(empty)], capture_output=True, text=True)
    assert done.returncode == 2 and "no ledger in" in done.stderr
