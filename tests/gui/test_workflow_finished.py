"""An image is done when the user says so, not when it has one object (issue 22 item 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.gui_input import accept_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box
from scubasteve.gui.image_list import RowState

pytestmark = pytest.mark.gui

CTRL = Qt.KeyboardModifier.ControlModifier


def test_an_image_with_objects_is_in_progress_until_marked_finished(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    model = window.project.model
    row = model.row_of(window.annotator.entry.path)
    window.annotator.set_label("dog")
    accept_box(window, qtbot, Box(80, 60, 240, 180))
    assert model.state(row) == RowState.STARTED
    assert "1 in progress" in window.images_panel.summary.text()

    key(window, Qt.Key.Key_D, CTRL)  # finished
    assert model.state(row) == RowState.DONE
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    data = json.loads(window.annotator.entry.path.with_suffix(".json").read_text())
    assert data["flags"] == {"finished": True}  # a plain LabelMe image flag

    key(window, Qt.Key.Key_Z, CTRL)  # undoable like any change
    assert model.state(row) == RowState.STARTED
    key(
        window, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier
    )  # next to do skips nothing unfinished
    assert window.project.row != row or model.find(-1, 1, (RowState.STARTED,)) == row


def test_an_image_without_objects_can_be_marked_finished(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    model = window.project.model
    path = window.annotator.entry.path
    row = model.row_of(path)
    assert model.state(row) == RowState.TODO
    key(window, Qt.Key.Key_D, CTRL)
    assert model.state(row) == RowState.DONE
    qtbot.waitUntil(
        lambda: path.with_suffix(".json").is_file() and not window.documents.unsaved, timeout=5000
    )
    key(window, Qt.Key.Key_D, CTRL)  # again: not finished
    assert model.state(row) == RowState.TODO


def test_next_to_do_visits_images_in_progress_from_the_top_too(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.project.go(2)
    qtbot.waitUntil(lambda: window.project.row == 2, timeout=5000)
    model = window.project.model
    model.set_state(0, RowState.STARTED)
    model.set_state(1, RowState.DONE)
    model.set_state(2, RowState.DONE)
    key(window, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)  # none after: starts over
    qtbot.waitUntil(lambda: window.project.row == 0, timeout=5000)


def test_an_opened_image_shows_its_own_state_in_the_list(make_window, image_folder, qtbot):
    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.io.labelme import write_labelme

    image = image_folder / "img1.png"
    mask = np.zeros((240, 320), dtype=bool)
    mask[60:120, 80:160] = True
    write_labelme(
        ImageDoc(image, 320, 240, [Annotation.from_mask("cat", mask)]), image.with_suffix(".json")
    )
    window = make_window(image_folder)
    model = window.project.model
    window.project.go(0)
    qtbot.waitUntil(lambda: window.annotator.entry.path == image, timeout=5000)
    assert model.state(0) == RowState.STARTED  # one object, not marked finished


def test_a_reopened_folder_shows_each_image_as_its_file_says_before_it_is_opened(
    make_window, image_folder, qtbot
):
    # The scan only sees that a file exists; the files are read after it (one rule, doc_state).
    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.io.labelme import write_labelme

    mask = np.zeros((240, 320), dtype=bool)
    mask[60:120, 80:160] = True
    for name, flags in (("img2", {}), ("img3", {"finished": True})):
        image = image_folder / f"{name}.png"
        doc = ImageDoc(image, 320, 240, [Annotation.from_mask("cat", mask)], flags)
        write_labelme(doc, image.with_suffix(".json"))
    window = make_window(image_folder)  # shows img1, the first to do
    model = window.project.model
    qtbot.waitUntil(lambda: model.state(1) == RowState.STARTED, timeout=5000)
    assert [model.state(r) for r in range(3)] == [RowState.TODO, RowState.STARTED, RowState.DONE]
    assert window.images_panel.summary.text().startswith("1 of 3 done")
