"""Scratch folders name their maker, and a new one sweeps away those a killed runner left."""

import os
import subprocess
import sys

from autolab.scratch import OWNER_FILE, scratch_dir, sweep_abandoned


def ended_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def folder(root, name: str, owner: int | None):
    path = root / name
    (path / "run").mkdir(parents=True)
    (path / "run" / "model.pt2").write_bytes(b"weights")
    if owner is not None:
        (path / OWNER_FILE).write_text(str(owner))
    return path


def test_only_folders_whose_maker_has_ended_are_removed(tmp_path):
    abandoned = folder(tmp_path, "autolab-sandbox-killed", ended_pid())
    live = folder(tmp_path, "autolab-zygote-live", os.getpid())
    unnamed = folder(tmp_path, "autolab-eval-older", None)  # before owners were written
    other = folder(tmp_path, "someone-else", ended_pid())
    target = folder(tmp_path, "kept", ended_pid())
    (tmp_path / "autolab-sample-link").symlink_to(target)
    assert sweep_abandoned(tmp_path) == [abandoned]
    assert not abandoned.exists()
    assert all(p.exists() for p in (live, unnamed, other, target / "run" / "model.pt2"))


def test_a_new_scratch_folder_names_this_process_and_sweeps_first(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    abandoned = folder(tmp_path, "autolab-zygote-killed", ended_pid())
    made = scratch_dir("autolab-zygote-")
    assert made.parent == tmp_path and not abandoned.exists()
    assert (made / OWNER_FILE).read_text() == str(os.getpid())
