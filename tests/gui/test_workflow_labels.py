"""Labels by key: Alt+1..9 choose the folder's first nine labels (issue 22 item 1)."""

from __future__ import annotations

import pytest
from helpers.gui_input import accept_box, drag_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box

pytestmark = pytest.mark.gui

ALT = Qt.KeyboardModifier.AltModifier


def test_alt_digits_choose_the_folders_labels_even_after_the_box(make_window, image_folder, qtbot):
    window = make_window(image_folder)  # labels.txt: cat, dog, person
    key(window, Qt.Key.Key_2, ALT)
    assert window.annotator.label == "dog"
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and not window.proposals.result.partial,
        timeout=5000,
    )
    key(window, Qt.Key.Key_3, ALT)  # changes the object being made too
    key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.documents.current.doc.annotations) == 1, timeout=5000)
    assert window.documents.current.doc.annotations[0].label == "person"
    messages: list[str] = []
    window.messages.said.connect(messages.append)
    key(window, Qt.Key.Key_7, ALT)
    assert window.annotator.label == "person"
    assert any("only 3 labels" in m for m in messages), messages


def test_label_keys_are_named_in_f1_the_picker_and_the_shortcut_editor(
    make_window, image_folder, qtbot
):
    from scubasteve.gui.views.dialogs import SettingsDialog
    from scubasteve.gui.views.label_picker import KEY_ROLE

    window = make_window(image_folder)
    rows = window.actions.shortcut_rows()
    assert ("Labels", "Label 1: cat", "Alt+1") in rows
    key(window, Qt.Key.Key_L)
    picker = window.label_picker
    keys = {
        picker.list.item(i).text(): picker.list.item(i).data(KEY_ROLE)
        for i in range(picker.list.count())
    }
    assert keys["cat"] == "Alt+1" and keys["person"] == "Alt+3"
    picker.hide()
    dialog = SettingsDialog(window.settings, window, texts=window.actions.texts())
    qtbot.addWidget(dialog)
    row = [dialog.keys.item(r, 0).text() for r in range(dialog.keys.rowCount())].index(
        "Label 2: dog"
    )
    assert dialog.keys.cellWidget(row, 1).keySequence().toString() == "Alt+2"


def test_relabelling_an_object_makes_its_label_the_next_default(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.annotator.set_label("cat")
    accept_box(window, qtbot, Box(80, 60, 240, 180))
    (ann,) = window.documents.current.doc.annotations
    window.annotator.select(ann.id)
    window.open_label_picker(relabel=True)
    window.label_picker.chosen.emit("dog")
    assert window.documents.current.doc.annotations[0].label == "dog"
    assert window.annotator.label == "dog", "the previous object's label is the next default"
