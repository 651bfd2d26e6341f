"""Finding the worker processes of the Ray a test started (to kill one mid-run)."""

from __future__ import annotations

import contextlib


def processes_of_this_ray(marker: str) -> list:
    """The processes of the Ray this test started whose command line names `marker` (only
    descendants of this process: other sessions on a shared host may run Ray too)."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # gone in the meantime
            if any(marker in part for part in p.cmdline()):
                found.append(p)
    return found
