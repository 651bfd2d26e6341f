"""Zoom, vertex edits and the shortcut editor as a power user meets them (issue 22 items 9, 13, 14)."""

from __future__ import annotations

import pytest
from helpers.gui_input import click, key
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui


def _wheel(window, at: QPoint, steps: int = 1) -> None:  # type: ignore[no-untyped-def]
    vp = window.view.viewport()
    event = QWheelEvent(
        QPointF(at), QPointF(vp.mapToGlobal(at)), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False,
    )  # fmt: skip
    QApplication.sendEvent(vp, event)


def test_the_wheel_zooms_about_the_point_under_the_cursor(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    view = window.view
    view.zoom_by(4.0)  # zoomed in, so the view can scroll
    vp = view.viewport()
    at = QPoint(vp.width() // 4, vp.height() // 4)  # off-centre
    under = view.mapToScene(at)
    zoom = view.zoom
    _wheel(window, at, 2)
    assert view.zoom == pytest.approx(zoom * 1.25**2)
    after = view.mapToScene(at)
    assert abs(after.x() - under.x()) < 1.0 and abs(after.y() - under.y()) < 1.0
    _wheel(window, at, -1)
    after = view.mapToScene(at)
    assert abs(after.x() - under.x()) < 1.0 and abs(after.y() - under.y()) < 1.0


def _square(window):  # type: ignore[no-untyped-def]
    window.annotator.set_label("cat")
    key(window, Qt.Key.Key_P)
    for x, y in ((40, 40), (140, 40), (140, 140), (40, 140)):
        click(window, x, y)
    key(window, Qt.Key.Key_Return)
    key(window, Qt.Key.Key_V)
    click(window, 90, 90)
    (ann,) = window.documents.current.doc.annotations
    assert window.annotator.selected == ann.id
    return ann


@pytest.mark.parametrize("edge", ["right", "bottom"])
def test_double_click_on_a_right_or_bottom_edge_inserts_a_vertex(
    make_window, image_folder, qtbot, edge
):
    window = make_window(image_folder)
    ann = _square(window)
    ring = ann.polygons[0].exterior
    if edge == "right":
        on_edge = window.view.mapFromScene(QPointF(ring[:, 0].max(), 90)) + QPoint(1, 0)
    else:
        on_edge = window.view.mapFromScene(QPointF(90, ring[:, 1].max())) + QPoint(0, 1)
    vp = window.view.viewport()
    # A real double click is a press, a release, then the double-click event (QTest's mouseDClick
    # leaves the first press out, which is the one that used to deselect the shape).
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, on_edge)
    QTest.mouseDClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, on_edge)
    assert window.annotator.selected == ann.id, "a press on the edge keeps the shape selected"
    (edited,) = window.documents.current.doc.annotations
    assert len(edited.polygons[0].exterior) == 5


def _settings_dialog(window, qtbot):  # type: ignore[no-untyped-def]
    from scubasteve.gui.views.dialogs import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    return dialog


def test_a_key_that_clashes_is_swapped_and_the_editor_says_so(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    dialog = _settings_dialog(window, qtbot)
    dialog._editors["tool_polygon"].setKeySequence(QKeySequence("W"))
    assert dialog._editors["tool_box"].keySequence().toString() == "P"
    note = dialog.key_note.text()
    assert "W" in note and "Box tool" in note and "P" in note
    new = dialog.result_settings()
    assert new.shortcuts["tool_polygon"] == "W" and new.shortcuts["tool_box"] == "P"
    assert window.actions.apply_shortcuts(new.shortcuts) == []
    assert window.actions["tool_polygon"].shortcut().toString() == "W"
    assert window.actions["tool_box"].shortcut().toString() == "P"


def test_recording_a_clashing_key_swaps_in_the_key_from_before_the_recording(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    dialog = _settings_dialog(window, qtbot)
    editor = dialog._editors["tool_polygon"]
    editor.clear()  # what the editor does itself when it starts recording a key
    editor.setKeySequence(QKeySequence("W"))
    assert dialog._editors["tool_box"].keySequence().toString() == "P"
    # A key given away meanwhile is not handed out twice.
    dialog._editors["tool_edit"].clear()  # the clear button: V is free now
    dialog._editors["tool_brush"].setKeySequence(QKeySequence("V"))  # and taken again
    dialog._editors["tool_edit"].clear()
    dialog._editors["tool_edit"].setKeySequence(QKeySequence("W"))
    assert dialog._editors["tool_polygon"].keySequence().isEmpty()  # not V: the brush has it
    assert "no key" in dialog.key_note.text()


def test_the_editor_shows_every_key_f1_shows(make_window, image_folder, qtbot):
    from scubasteve.gui.actions import ACTIONS

    window = make_window(image_folder)
    dialog = _settings_dialog(window, qtbot)
    for spec in ACTIONS:
        shown = [
            e.keySequence().toString()
            for e in (dialog._editors[spec.id], dialog._alt_editors[spec.id])
            if not e.keySequence().isEmpty()
        ]
        in_f1 = [s.toString() for s in window.actions[spec.id].shortcuts()]
        assert shown == in_f1, spec.id
    assert [dialog._editors["redo"].keySequence().toString(),
            dialog._alt_editors["redo"].keySequence().toString()] == ["Ctrl+Shift+Z", "Ctrl+Y"]  # fmt: skip


def test_clashing_keys_from_the_settings_file_are_named_in_a_notice(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    new = window.settings.__class__(
        **{**window.settings.__dict__, "shortcuts": {"tool_polygon": "W"}}
    )
    window.apply_settings(new)
    assert window.notice.isVisible()
    text = window.notice.text.text()
    assert "W" in text and "Polygon tool" in text and "Box tool" in text
