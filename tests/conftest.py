"""Shared test set-up: offscreen Qt, legacy Keras, isolated settings, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Must be set before Qt or TensorFlow are imported anywhere in the test session.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point settings and the model cache at temporary folders so tests never touch the user's."""
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("SCUBASTEVE_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("SCUBASTEVE_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("SCUBASTEVE_DATA_DIR", str(base / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The shared real data folder; skips the test when it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
