"""`autolab init`, `train` and `sample` end to end through the real CLI, and their bad input."""

import subprocess

import pytest
from tests_support import autolab, shared_data_dir


def assert_usage_error(done, *needles):
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.mark.parametrize("recipe", ["gpt", "mlp"])
def test_init_train_sample_on_names(tmp_path, home, recipe):
    workspace = tmp_path / "ws"
    done = autolab("init", str(workspace), "--recipe", recipe, "--budget", "3s", home=home)
    assert done.returncode == 0, done.stderr
    for name in ("train.py", "program.md", "autolab.toml", ".gitignore"):
        assert (workspace / name).is_file()
    log = subprocess.run(["git", "log", "--oneline"], cwd=workspace, capture_output=True, text=True)
    assert len(log.stdout.splitlines()) == 1

    done = autolab("train", "-C", str(workspace), "--samples", "3", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    block = done.stdout.split("---", 1)[1]
    values = dict(line.split(":", 1) for line in block.strip().splitlines()[:9])
    val_bpb = float(values["val_bpb"])
    assert 1.0 < val_bpb < 5.0
    assert float(values["training_seconds"]) >= 3.0
    samples = done.stdout.split("samples", 1)[1].strip().splitlines()
    assert len(samples) == 3 and all(s.strip() == s for s in samples)

    done = autolab("sample", "-C", str(workspace), "-n", "4", "--temperature", "0.8", home=home)
    assert done.returncode == 0, done.stderr
    names = done.stdout.strip().splitlines()
    assert len(names) == 4
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in names)


def test_sample_continues_a_prompt(tmp_path, home):
    workspace = tmp_path / "ws"
    autolab("init", str(workspace), "--recipe", "mlp", "--budget", "2s", home=home)
    assert autolab("train", "-C", str(workspace), "--samples", "0", home=home).returncode == 0
    done = autolab("sample", "-C", str(workspace), "-n", "2", "--prompt", "ma", home=home)
    assert done.returncode == 0
    assert all(line.startswith("ma") for line in done.stdout.strip().splitlines())


def test_init_refuses_a_non_empty_directory(tmp_path, home):
    (tmp_path / "keep.txt").write_text("mine")
    assert_usage_error(autolab("init", str(tmp_path), home=home), "not empty")
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--recipe", "rnn"], "unknown recipe"),
        (["--budget", "soon"], "30s"),
        (["--budget", "0s"], "positive"),
        (["--from", "/no/such/file.txt"], "does not exist"),
        (["--device", "tpu"], "unknown device"),
        (["--dataset", "/no/such/names.txt"], "no such file"),
        (["--dataset", "nmaes"], "unknown dataset"),
    ],
)
def test_init_bad_flags_leave_nothing_behind(tmp_path, home, flags, needle):
    target = tmp_path / "ws"
    assert_usage_error(autolab("init", str(target), *flags, home=home), needle)
    assert not target.exists()


def test_init_sizes_train_py_for_the_device_and_records_it(tmp_path, home):
    import tomllib

    from autolab.research.constants import parse_constants, values

    sized = {}
    for device in ("cpu", "cuda"):  # sizing for a GPU needs none at hand
        workspace = tmp_path / device
        done = autolab("init", str(workspace), "--device", device, home=home)
        assert done.returncode == 0, done.stderr
        assert f"sized for {device}" in done.stdout
        settings = tomllib.loads((workspace / "autolab.toml").read_text())
        assert settings["train"]["device"] == device
        sized[device] = values(parse_constants((workspace / "train.py").read_text()))
    assert sized["cpu"].keys() == sized["cuda"].keys()  # one set of constants, no twins
    assert (sized["cpu"]["DEPTH"], sized["cuda"]["DEPTH"]) == (2, 8)


def test_train_on_another_device_than_sized_for_says_so_in_one_line(tmp_path, home):
    workspace = tmp_path / "ws"
    autolab("init", str(workspace), "--recipe", "mlp", "--device", "cuda", home=home)
    done = autolab(
        "train", "-C", str(workspace), "--device", "cpu", "--budget", "1s", "--samples", "0",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: train.py")]
    assert len(notes) == 1, done.stdout
    assert "sized for cuda" in notes[0] and "autolab init DIR --device cpu" in notes[0]


def test_train_outside_a_workspace(tmp_path, home):
    assert_usage_error(autolab("train", "-C", str(tmp_path), home=home), "autolab init")


def test_train_on_cuda_without_one(tmp_path, home):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    workspace = tmp_path / "ws"
    autolab("init", str(workspace), "--recipe", "mlp", home=home)
    assert_usage_error(
        autolab("train", "-C", str(workspace), "--device", "cuda", home=home), "CUDA"
    )


def test_sample_before_any_training(tmp_path, home):
    workspace = tmp_path / "ws"
    autolab("init", str(workspace), home=home)
    assert_usage_error(autolab("sample", "-C", str(workspace), home=home), "autolab train")


def test_a_dataset_path_given_relative_to_where_init_ran_still_reads_from_the_workspace(
    tmp_path, home
):
    (tmp_path / "texts").mkdir()
    mine = tmp_path / "texts" / "mine.txt"
    mine.write_text("\n".join(["anna", "bob", "carl", "dora"] * 2000))
    done = autolab("init", "ws", "--dataset", "texts/mine.txt", "--recipe", "mlp", "--budget",
                   "1s", home=home, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f'dataset = "{mine}"' in (tmp_path / "ws" / "autolab.toml").read_text()
    done = autolab("train", "--samples", "0", home=home, cwd=tmp_path / "ws")
    assert done.returncode == 0, done.stdout + done.stderr


def test_train_with_a_missing_dataset_file(tmp_path, home):
    workspace = tmp_path / "ws"
    source = tmp_path / "gone.txt"
    source.write_text("\n".join(["abc"] * 10))
    autolab("init", str(workspace), "--dataset", str(source), home=home)
    source.unlink()
    assert_usage_error(autolab("train", "-C", str(workspace), home=home), "gone.txt")


def test_train_on_a_local_file_with_one_name_per_line(tmp_path, home):
    workspace = tmp_path / "ws"
    names = shared_data_dir() / "names.txt"
    autolab("init", str(workspace), "--dataset", str(names), "--recipe", "mlp", "--budget", "2s",
            home=home)  # fmt: skip
    done = autolab("train", "-C", str(workspace), "--samples", "0", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
