"""Work around a PySide6 reference-count bug: `SignalInstance.emit` loses a reference to `True`.

Seen with PySide6 6.12 on Python 3.11 (where `True` is not yet immortal): each Python-side `emit`
to a connected slot drops one reference to `True` that it never took. After some thousands of
signals (a few hundred annotated objects) the count reaches zero and the interpreter aborts with
"bool_dealloc: deallocating True or False". The probe below measures the leak once at import; only
when it is present is `emit` wrapped to give the reference back. An extra reference to `True` is
harmless, a missing one is fatal, so the correction errs on the extra side.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_original_emit = SignalInstance.emit
_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    ping = Signal(int)


def emit_leaks_true(trials: int = 50) -> bool:
    """True when emitting a connected signal loses references to `True` (the bug is present)."""
    probe = _Probe()
    probe.ping.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for _ in range(trials):
        _original_emit(probe.ping, 1)
    lost = before - sys.getrefcount(True)
    for _ in range(max(lost, 0)):
        _incref(True)  # give back what the probe itself lost
    return lost > trials // 2


def _emit(self: SignalInstance, *args: object) -> object:
    result = _original_emit(self, *args)
    if result is True or result is False:
        _incref(result)
    return result


def install() -> bool:
    """Wrap `emit` if this PySide6 has the leak; returns whether it did."""
    if SignalInstance.emit is _emit:
        return True
    if not emit_leaks_true():
        return False
    SignalInstance.emit = _emit  # type: ignore[method-assign]
    return True


INSTALLED = install()
