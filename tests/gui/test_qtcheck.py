"""The installed PySide6 must not lose references to None or True (PySide6 6.12.0 on Python 3.11 does)."""

from __future__ import annotations

import sys

import pytest
from helpers.gui_input import drag_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box
from scubasteve.gui.qtcheck import reference_leak

pytestmark = pytest.mark.gui


def test_installed_pyside6_keeps_reference_counts():
    assert reference_leak() is None


def test_annotating_objects_keeps_the_reference_counts_of_none_and_true(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    window.annotator.set_label("cat")
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(5):
        drag_box(window, Box(10 + 20 * i, 20, 100 + 20 * i, 200))
        qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
        key(window, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    # Objects that now hold None/True legitimately move these by a few; a leak moves them by hundreds.
    assert sys.getrefcount(None) >= none_before - 50
    assert sys.getrefcount(True) >= true_before - 50
