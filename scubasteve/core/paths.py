"""User folders (settings, model cache, data), overridable by environment for tests and portable use.

SCUBASTEVE_CONFIG_DIR, SCUBASTEVE_CACHE_DIR and SCUBASTEVE_DATA_DIR replace the platformdirs defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "scubasteve"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return _dir("SCUBASTEVE_CONFIG_DIR", "config")


def cache_dir() -> Path:
    return _dir("SCUBASTEVE_CACHE_DIR", "cache")


def data_dir() -> Path:
    return _dir("SCUBASTEVE_DATA_DIR", "data")


def models_dir() -> Path:
    """Where model weights are installed (`scubasteve models path`)."""
    return data_dir() / "models"
