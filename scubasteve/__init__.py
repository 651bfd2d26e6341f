"""Scuba Steve: drag a box, pick one of ten mask proposals, save polygons ready for training."""

from __future__ import annotations

__all__ = ["__version__"]


def _read_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("scubasteve")
    except metadata.PackageNotFoundError:  # running from a source tree or a frozen bundle
        return "0.1.0"


__version__ = _read_version()
