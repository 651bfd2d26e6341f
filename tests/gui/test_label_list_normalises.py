"""The window's label list normalises labels as the readers do (issue 21, item 5)."""

from __future__ import annotations

import pytest
from helpers.gui_input import key
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

pytestmark = pytest.mark.gui


def test_a_typed_label_that_looks_like_a_known_one_is_that_label(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_L)
    picker = window.label_picker
    qtbot.waitUntil(picker.isVisible, timeout=2000)
    # a zero-width space and a trailing space (QTest.keyClicks aborts on a zero-width space)
    picker.filter.insert("dog\u200b ")
    texts = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert texts == ["dog"]  # no "Add new label: dog\u200b"
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.annotator.label == "dog"
    assert window.annotator.labels.ordered().count("dog") == 1
