"""Manual tools, review keys, label picker, F1 and visibility, each through the real window."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.gui_input import click, drag_box, key, view_point
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from scubasteve.core.geometry import Box, polygons_to_mask

pytestmark = pytest.mark.gui


def _annotations(window):  # type: ignore[no-untyped-def]
    return window.documents.current.doc.annotations


def test_polygon_tool_adds_a_polygon_and_undo_redo_work(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.annotator.set_label("cat")
    key(window, Qt.Key.Key_P)
    assert window.tool_name == "polygon"
    for x, y in ((50, 50), (150, 50), (150, 120), (50, 120)):
        click(window, x, y)
    key(window, Qt.Key.Key_Return)
    (ann,) = _annotations(window)
    assert ann.label == "cat" and ann.source == "manual"
    assert abs(ann.polygons[0].area - 100 * 70) < 100 * 70 * 0.05
    window.documents.undo_group.undo()
    assert _annotations(window) == []
    window.documents.undo_group.redo()
    assert len(_annotations(window)) == 1
    window.documents.flush()
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    data = json.loads((image_folder / "img1.json").read_text())
    assert data["shapes"][0]["shape_type"] == "polygon"


def _add_square(window, qtbot):  # type: ignore[no-untyped-def]
    window.annotator.set_label("cat")
    key(window, Qt.Key.Key_P)
    for x, y in ((40, 40), (140, 40), (140, 140), (40, 140)):
        click(window, x, y)
    key(window, Qt.Key.Key_Return)
    return _annotations(window)[0]


def test_vertex_tool_moves_inserts_and_deletes_vertices(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    ann = _add_square(window, qtbot)
    key(window, Qt.Key.Key_V)
    click(window, 90, 90)  # inside: selects
    assert window.annotator.selected == ann.id
    vp = window.view.viewport()
    start, end = view_point(window, 140, 140), view_point(window, 180, 180)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(vp, end)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    moved = _annotations(window)[0]
    assert moved.id == ann.id
    assert np.abs(moved.polygons[0].exterior - [180, 180]).sum(axis=1).min() < 3
    QTest.mouseDClick(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_point(window, 90, 40)
    )
    assert len(_annotations(window)[0].polygons[0].exterior) == 5
    click(window, 90, 40, Qt.MouseButton.RightButton)
    assert len(_annotations(window)[0].polygons[0].exterior) == 4
    window.documents.undo_group.undo()
    window.documents.undo_group.undo()
    window.documents.undo_group.undo()
    assert np.array_equal(_annotations(window)[0].polygons[0].exterior, ann.polygons[0].exterior)


def test_brush_grows_and_eraser_shrinks_the_selected_mask(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    ann = _add_square(window, qtbot)
    window.annotator.select(ann.id)
    area0 = ann.polygons[0].area
    key(window, Qt.Key.Key_B)
    vp = window.view.viewport()
    a, b = view_point(window, 140, 90), view_point(window, 170, 90)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, b)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    qtbot.waitUntil(lambda: _annotations(window)[0].polygons[0].area > area0 + 200, timeout=5000)
    grown = sum(p.area for p in _annotations(window)[0].polygons)
    key(window, Qt.Key.Key_E)
    a, b = view_point(window, 40, 90), view_point(window, 90, 90)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, b)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    qtbot.waitUntil(
        lambda: sum(p.area for p in _annotations(window)[0].polygons) < grown - 200, timeout=5000
    )
    mask = polygons_to_mask(_annotations(window)[0].polygons, 240, 320)
    assert mask[90, 160] and not mask[90, 60]


def test_label_picker_filters_as_you_type_and_enter_chooses(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_L)
    picker = window.label_picker
    qtbot.waitUntil(picker.isVisible, timeout=2000)
    QTest.keyClicks(picker.filter, "do")
    assert picker.list.item(0).text() == "dog"
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.annotator.label == "dog"
    assert not picker.isVisible()
    key(window, Qt.Key.Key_L)
    qtbot.waitUntil(picker.isVisible, timeout=2000)
    assert picker.list.item(0).text() == "dog", "the recent label comes first"
    QTest.keyClicks(picker.filter, "zebra fish")
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.annotator.label == "zebra fish"


def test_f1_lists_every_shortcut(make_window, image_folder, qtbot):
    from scubasteve.gui.actions import ACTIONS
    from scubasteve.gui.views.dialogs import ShortcutsDialog

    window = make_window(image_folder)
    key(window, Qt.Key.Key_F1)
    qtbot.waitUntil(
        lambda: any(isinstance(c, ShortcutsDialog) and c.isVisible() for c in window.children()),
        timeout=2000,
    )
    dialog = next(c for c in window.children() if isinstance(c, ShortcutsDialog))
    texts = {
        dialog.table.item(r, 1).text(): dialog.table.item(r, 2).text()
        for r in range(dialog.table.rowCount())
    }
    assert len(texts) == len(ACTIONS)
    assert texts["Pick proposal 3"] == "3"
    assert all(texts[window.actions[s.id].text()] for s in ACTIONS if s.keys)
    assert texts["Label 2: dog"] == "Alt+2"  # label keys are named after the folder's labels


def test_delete_hide_and_relabel_from_the_annotations_dock(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    ann = _add_square(window, qtbot)
    panel = window.annotations_panel
    panel.list.setCurrentRow(0)
    assert window.annotator.selected == ann.id
    key(window, Qt.Key.Key_H)
    assert ann.id in window.documents.current.hidden
    window.annotator.relabel_selected("dog")
    assert _annotations(window)[0].label == "dog"
    key(window, Qt.Key.Key_Delete)
    assert _annotations(window) == []


def test_next_image_key_moves_on_and_preloads_the_following_image(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    qtbot.waitUntil(
        lambda: window.project.loader.cached(image_folder / "img2.png") is not None, timeout=5000
    )
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=2000)
    qtbot.waitUntil(
        lambda: window.project.loader.cached(image_folder / "img3.png") is not None, timeout=5000
    )


def test_time_per_object_is_recorded_and_shown(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.annotator.set_label("dog")
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    qtbot.wait(150)
    key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(_annotations(window)) == 1, timeout=5000)
    seconds = _annotations(window)[0].seconds
    assert seconds is not None and seconds >= 0.15
    qtbot.waitUntil(lambda: window.stats_panel.total.text().startswith("1 object:"), timeout=3000)
    assert window.stats_panel.model.rows[0].label == "dog"


def test_settings_dialog_changes_shortcuts_and_values(make_window, image_folder, qtbot):
    from PySide6.QtGui import QKeySequence

    from scubasteve.gui.views.dialogs import SettingsDialog

    window = make_window(image_folder)
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.engine.setCurrentText("deepmask")
    dialog.tolerance.setValue(2.5)
    dialog._editors["accept"].setKeySequence(QKeySequence("Space"))
    new = dialog.result_settings()
    assert (new.engine, new.polygon_tolerance, new.shortcuts) == (
        "deepmask",
        2.5,
        {"accept": "Space; Enter"},  # the alternative key (keypad Enter) stays
    )
    assert window.settings.engine == "classic", "the window's settings change only on OK"
    window.actions.apply_shortcuts(new.shortcuts)
    assert [k.toString() for k in window.actions["accept"].shortcuts()] == ["Space", "Enter"]


def test_whole_folder_times_come_from_the_annotation_files(make_window, image_folder, qtbot):
    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.core.geometry import Polygon
    from scubasteve.io.labelme import write_labelme

    square = Polygon(np.array([[10, 10], [60, 10], [60, 50], [10, 50]], dtype=float))
    for name, secs in (("img2", (4.0, 6.0)), ("img3", (10.0,))):
        anns = [Annotation("cat", (square,), seconds=s) for s in secs]
        write_labelme(
            ImageDoc(image_folder / f"{name}.png", 320, 240, anns), image_folder / f"{name}.json"
        )
    window = make_window(image_folder)
    window.stats_panel.whole_folder.emit()
    qtbot.waitUntil(lambda: window.stats_panel.scope.text() == "Whole folder", timeout=5000)
    assert window.stats_panel.total.text().startswith(
        "3 objects: 6.7 s per object, 540 objects per hour"
    )


def test_settings_dialog_keeps_pixellib_own_threshold_until_one_is_chosen(qtbot):
    from scubasteve.core.settings import Settings
    from scubasteve.gui.views.dialogs import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.pl_score.text() == "PixelLib's for the size"
    assert dialog.result_settings().pixellib_min_score is None
    dialog.pl_score.setValue(0.3)
    assert dialog.result_settings().pixellib_min_score == pytest.approx(0.3)
