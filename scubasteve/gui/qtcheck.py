"""Detect PySide6 builds that lose references to None and True (they crash the interpreter).

PySide6 6.12.0 on Python 3.11 (where None and True are not yet immortal) drops one reference to
`None` on every call of a void Qt method from Python and one to `True` on every signal emit. After
some tens of thousands of calls (minutes of annotating) the count reaches zero and the interpreter
aborts with "none_dealloc" or "bool_dealloc". pyproject.toml excludes those versions; this check
catches an environment that has one anyway, so the window can say so instead of dying later.
"""

from __future__ import annotations

import sys

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal(int)


def reference_leak() -> str | None:
    """A message when this PySide6 loses references to None or True; None when it is sound."""
    probe = _Probe()
    probe.ping.connect(lambda _v: None)
    trials = 64
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(trials):
        probe.setObjectName("probe")  # a void method
        probe.ping.emit(1)
    lost_none = none_before - sys.getrefcount(None)
    lost_true = true_before - sys.getrefcount(True)
    if lost_none < trials // 2 and lost_true < trials // 2:
        return None
    return (
        f"PySide6 {PYSIDE_VERSION} on Python {sys.version_info.major}.{sys.version_info.minor} loses "
        "object references and will crash after a while; install another version, e.g. "
        "pip install 'PySide6-Essentials>=6.6,<6.12'"
    )
