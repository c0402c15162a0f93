"""The hardware fingerprint: taken where the experiment runs, stored in its flags, shown by
`status` and `results` (one line for one machine, an hw column and a legend for several)."""

import os
import subprocess
import sys

import torch

from autolab.hardware import distinct, fingerprint, label
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord

CPU = fingerprint("cpu")
OTHER = {**CPU, "device": "NVIDIA H200", "driver": "550.54.15", "cuda": "12.8", "threads": 16}


def test_fingerprint_of_this_machine():
    assert CPU["device"] == "cpu" and CPU["driver"] is None and CPU["cuda"] is None
    # Threads as this process first saw them (fingerprint caches the machine); other tests in
    # the process may have changed torch's count since.
    assert CPU["torch"] == torch.__version__ and CPU["threads"] >= 1
    assert CPU["cpu"] and CPU["workers"] == 1
    assert fingerprint("cpu", workers=3)["workers"] == 3


def test_label_and_distinct():
    text = label(OTHER)
    assert text.startswith("NVIDIA H200 (driver 550.54.15, CUDA 12.8) · ")
    assert "16 threads" in text and f"torch {CPU['torch']}" in text and text.endswith("1 worker")
    assert label(None) == "not recorded"
    assert distinct([CPU, None, OTHER, dict(CPU)]) == [CPU, OTHER]


def cli(*args):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    code = "import sys\nfrom autolab.cli import main\nsys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


def test_status_and_results_show_the_fingerprints(tmp_path):
    (tmp_path / ".autolab").mkdir()
    with Ledger.for_workspace(tmp_path) as ledger:
        session = ledger.start_session("t", "autolab/t", "search", 30.0, "cpu", {"pid": 1})
        for number, hardware in ((1, CPU), (2, None), (3, OTHER)):  # 2: an older ledger's row
            ledger.add_experiment(ExperimentRecord(number, session, "candidate", "", f"c{number}"))
            flags = {"hardware": hardware} if hardware else {}
            ledger.add_result(number, ResultRecord("discard", val_bpb=2.0, flags=flags))
        ledger.end_session(session, "succeeded")
    status = cli("status", "-C", str(tmp_path))
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if "hardware" in line]
    assert len(lines) == 2, status.stdout
    assert label(CPU) in lines[0] and label(OTHER) in lines[1]
    results = cli("results", "-C", str(tmp_path))
    assert results.returncode == 0, results.stderr
    assert f"hw1: {label(CPU)}" in results.stdout and f"hw2: {label(OTHER)}" in results.stdout
    rows = [line.split() for line in results.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[-1] for row in rows] == ["hw1", "c2", "hw2"]  # no fingerprint: no key
