"""The installed-files check: a real distribution's RECORD against its files on disk."""

import importlib.metadata
import os
import shutil

import pytest

from autolab.errors import UsageError
from autolab.installed import changed_files, check_installed


class Copy:
    """A distribution whose files are copies we may change: iniconfig's, in a scratch dir."""

    def __init__(self, tmp_path):
        real = importlib.metadata.distribution("iniconfig")
        self.root = tmp_path / "site"
        for entry in real.files:
            target = self.root / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.locate().is_file():
                shutil.copyfile(entry.locate(), target)
        [self.info] = self.root.glob("iniconfig-*.dist-info")
        self.distribution = importlib.metadata.PathDistribution(self.info)


def test_an_untouched_install_passes_and_a_changed_file_is_named(tmp_path):
    copy = Copy(tmp_path)
    assert changed_files(copy.distribution, tmp_path / "cache") == []
    [source] = [f for f in copy.distribution.files if str(f).endswith("__init__.py")]
    path = source.locate()
    path.write_text(path.read_text() + "\n# changed\n")
    assert changed_files(copy.distribution, tmp_path / "cache") == [str(source)]


def test_an_edit_that_keeps_the_size_and_mtime_is_still_caught(tmp_path):
    copy = Copy(tmp_path)
    assert changed_files(copy.distribution, tmp_path / "cache") == []  # now remembered
    [source] = [f for f in copy.distribution.files if str(f).endswith("__init__.py")]
    path = source.locate()
    before = path.stat()
    text = path.read_text()
    path.write_text(text[:-1] + ("x" if text[-1] != "x" else "y"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime: ctime moves
    assert changed_files(copy.distribution, tmp_path / "cache") == [str(source)]


def test_the_real_torch_and_autolab_pass():
    check_installed()  # no error: installed as pip installed them


def test_a_changed_package_is_a_one_line_usage_error(tmp_path, monkeypatch):
    copy = Copy(tmp_path)
    [source] = [f for f in copy.distribution.files if str(f).endswith("__init__.py")]
    source.locate().write_text("# changed\n")
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: copy.distribution)
    with pytest.raises(UsageError) as caught:
        check_installed(("iniconfig",), cache=tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message and "iniconfig/__init__.py" in message
    assert "pip install --force-reinstall --no-deps iniconfig==" in message
