"""The zygote forks training processes that behave like `python train.py` in a fresh process.

Real processes throughout: one zygote per module, scripts written to tmp_path, exit statuses as
the zygote reports them.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolab.processes import process_alive
from autolab.zygote.client import Zygote, ZygoteError, ask_child, base_environment


@pytest.fixture(scope="module")
def zygote():
    with Zygote() as z:
        yield z


def run_script(zygote, tmp_path, source: str, env=None, timeout=60.0):
    script = tmp_path / "train.py"
    script.write_text(source)
    log = tmp_path / "run.log"
    job = {"script": str(script), "cwd": str(tmp_path), "log": str(log), "env": env or {}}
    child = zygote.spawn("train", job)
    code = child.wait(timeout)
    return code, log.read_text()


def test_exit_codes_and_output_go_where_python_would_send_them(zygote, tmp_path):
    code, log = run_script(zygote, tmp_path, "import sys\nprint('hello')\nsys.exit(3)\n")
    assert (code, log) == (3, "hello\n")
    code, log = run_script(zygote, tmp_path / "", "print('done')\n")
    assert code == 0 and log.endswith("done\n")
    code, log = run_script(zygote, tmp_path, "import sys\nsys.exit('no data here')\n")
    assert code == 1 and "no data here" in log


def test_an_uncaught_exception_shows_the_scripts_traceback_and_exits_1(zygote, tmp_path):
    code, log = run_script(zygote, tmp_path, "def f():\n    raise ValueError('bad shape')\nf()\n")
    assert code == 1
    assert log.startswith("Traceback (most recent call last):")
    assert 'train.py", line 3' in log and "ValueError: bad shape" in log
    assert "runpy" not in log and "zygote" not in log


def test_the_script_runs_as_main_with_its_own_directory_environment_and_argv(
    zygote, tmp_path, monkeypatch
):
    (tmp_path / "helper_module.py").write_text("VALUE = 41\n")
    source = (
        "import json, os, sys\n"
        "import helper_module\n"
        "print(json.dumps({'name': __name__, 'argv': sys.argv, 'cwd': os.getcwd(),\n"
        "  'env': dict(os.environ), 'value': helper_module.VALUE + 1}))\n"
    )
    code, log = run_script(zygote, tmp_path, source, env={"ONLY_THIS": "1"})
    seen = json.loads(log)
    assert code == 0
    assert seen["name"] == "__main__" and seen["value"] == 42
    assert seen["argv"] == [str(tmp_path / "train.py")] and seen["cwd"] == str(tmp_path)
    assert seen["env"] == {"ONLY_THIS": "1"}  # exactly the job's environment, nothing inherited


def test_children_draw_fresh_python_random_states(zygote, tmp_path):
    source = "import random\nimport numpy as np\nprint(random.random(), np.random.rand())\n"
    first = run_script(zygote, tmp_path / "", source)[1]
    (tmp_path / "run.log").unlink()
    second = run_script(zygote, tmp_path, source)[1]
    assert first != second


def test_a_childs_garbage_collection_skips_the_zygotes_objects_but_collects_its_own(
    zygote, tmp_path
):
    source = (
        "import gc, json\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "del a, b\n"
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'enabled': gc.isenabled(),\n"
        "  'collected': gc.collect()}))\n"
    )
    code, log = run_script(zygote, tmp_path, source)
    seen = json.loads(log)
    assert code == 0
    assert seen["frozen"] > 100_000  # torch and autolab, imported and warmed up once
    assert seen["enabled"] and seen["collected"] >= 2  # the child's own cycle is still freed


def test_torch_in_a_child_computes_with_the_threads_a_fresh_process_gets(zygote, tmp_path):
    source = (
        "import torch\n"
        "a = torch.randn(256, 256)\n"
        "print(torch.get_num_threads(), float((a @ a.T).trace() > 0))\n"
    )
    code, log = run_script(zygote, tmp_path, source)
    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert code == 0
    assert log.split()[0] == fresh.stdout.strip() and log.split()[1] == "1.0"


@pytest.mark.cuda
def test_a_child_can_use_cuda_after_the_zygotes_warm_up(zygote, tmp_path):
    """torch refuses CUDA in a child forked after the parent asked the driver for its devices;
    the warm-up must not have asked (autolab.zygote.server.children_can_use_cuda)."""
    import torch

    if not torch.cuda.is_available():  # asked here, in the test process: not the zygote
        pytest.skip("needs a CUDA device")
    source = "import torch\nprint(float(torch.ones(4, device='cuda').sum()))\n"
    code, log = run_script(zygote, tmp_path, source)
    assert code == 0, log
    assert log.strip() == "4.0"


def test_kill_ends_the_childs_whole_process_group(zygote, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    source = (
        "import subprocess, time\n"
        f"p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    script = tmp_path / "train.py"
    script.write_text(source)
    job = {"script": str(script), "cwd": str(tmp_path), "log": str(tmp_path / "run.log"),
           "env": {"PATH": os.environ["PATH"]}}  # fmt: skip
    child = zygote.spawn("train", job)
    deadline = time.time() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline, (tmp_path / "run.log").read_text()
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    child.kill()
    assert child.returncode == -9
    deadline = time.time() + 10
    while process_alive(grandchild):  # the sleep was in the child's group: killed with it
        assert time.time() < deadline, "the grandchild survived the group kill"
        time.sleep(0.05)


def ask(zygote, tmp_path, source: str, timeout: float):
    """ask_child with a train job running `source`: (lines, status, the child, the folder its
    log was in), or lines and status None past the timeout."""
    script = tmp_path / "train.py"
    where = tmp_path / "log_path"
    tell = f"import os\nopen({str(where)!r}, 'w').write(os.readlink('/proc/self/fd/1'))\n"
    script.write_text(tell + source)
    job = {"script": str(script), "cwd": str(tmp_path), "env": {}}
    started = []
    try:
        lines, status = ask_child(zygote, "train", job, "autolab-eval-", timeout, started.append)
    except subprocess.TimeoutExpired:
        lines, status = None, None
    log = Path(where.read_text())
    assert log.name == "train.log" and log.parent.name.startswith("autolab-eval-")
    return lines, status, started[0], log.parent


def test_ask_child_gives_the_childs_lines_and_status_and_removes_its_scratch_folder(
    zygote, tmp_path
):
    source = "print('warming up')\nprint('{\"answer\": 42}')\nraise SystemExit(3)\n"
    lines, status, child, scratch = ask(zygote, tmp_path, source, timeout=60)
    assert (lines, status, child.returncode) == (["warming up", '{"answer": 42}'], 3, 3)
    assert not scratch.exists()


def test_ask_child_kills_a_child_past_its_timeout_and_still_removes_its_scratch_folder(
    zygote, tmp_path
):
    lines, status, child, scratch = ask(zygote, tmp_path, "import time\ntime.sleep(300)\n", 2)
    assert (lines, status, child.returncode) == (None, None, -9)
    assert not scratch.exists()


def test_a_zygote_is_replaced_when_the_environment_changes(monkeypatch):
    with Zygote() as z:
        assert z.usable
        monkeypatch.setenv("SOMETHING_NEW", "1")
        assert not z.usable  # torch may read the environment at import: start a new one
        monkeypatch.setenv("AUTOLAB_RUN_DIR", "/x")  # autolab's own variables never reach it
        assert "AUTOLAB_RUN_DIR" not in base_environment()


def test_a_zygote_that_cannot_start_says_why_in_one_line(tmp_path, monkeypatch):
    broken = tmp_path / "broken" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('this torch is broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    job = {"script": str(tmp_path / "train.py"), "cwd": str(tmp_path),
           "log": str(tmp_path / "run.log"), "env": {}}  # fmt: skip
    with Zygote() as z, pytest.raises(ZygoteError) as failure:
        z.spawn("train", job, timeout=60)
    message = str(failure.value)
    assert "this torch is broken" in message and "\n" not in message
    assert failure.value.exit_code == 2


def test_a_sample_child_says_why_it_cannot_sample_in_one_line(zygote, tmp_path):
    from autolab.errors import UsageError
    from autolab.harness.files import MODEL_FILE, MODEL_INFO_FILE
    from autolab.sampling_launcher import forked_samples

    (tmp_path / MODEL_FILE).write_bytes(b"not an archive")
    (tmp_path / MODEL_INFO_FILE).write_text(json.dumps({"context_len": 8, "vocab_size": 5}))
    with pytest.raises(UsageError, match="cannot be loaded") as raised:
        forked_samples(zygote, tmp_path, tmp_path, count=2, seed=0)
    assert "\n" not in str(raised.value)
