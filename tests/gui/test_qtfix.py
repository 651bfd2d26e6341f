"""Regression: Python-side signal emits must not drain references to `True` (PySide6 6.12 bug)."""

from __future__ import annotations

import sys

import pytest
from gui_helpers import drag_box, key
from PySide6.QtCore import QObject, Qt, Signal

from scubasteve.core.geometry import Box

pytestmark = pytest.mark.gui


class _Emitter(QObject):
    value = Signal(int)


def test_emitting_a_connected_signal_keeps_the_reference_count_of_true():
    import scubasteve.gui  # noqa: F401  (installs the fix)

    e = _Emitter()
    e.value.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for _ in range(2000):
        e.value.emit(1)
    assert sys.getrefcount(True) >= before - 5


def test_annotating_objects_keeps_the_reference_count_of_true(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.annotator.set_label("cat")
    before = sys.getrefcount(True)
    for i in range(5):
        drag_box(window, Box(10 + 20 * i, 20, 100 + 20 * i, 200))
        qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
        key(window, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    assert sys.getrefcount(True) >= before - 20
