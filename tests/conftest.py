"""Shared fixtures: the real test data in ../shared/data and a throwaway AUTOLAB_HOME."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def autolab_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "autolab-home"
    monkeypatch.setenv("AUTOLAB_HOME", str(home))
    return home
