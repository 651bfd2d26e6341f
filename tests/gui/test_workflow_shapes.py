"""Shape operations (issue 22 items 5 and 6): merge, subtract, lock, and simpler / finer outlines
with the point count shown; every one undoable and saved as LabelMe polygons."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from helpers.gui_input import click, key, view_point
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from scubasteve.core.annotation import Annotation
from scubasteve.core.commands import AddAnnotation
from scubasteve.core.geometry import Polygon, polygons_to_mask

pytestmark = pytest.mark.gui

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _add(window, label: str, x0: float, y0: float, x1: float, y1: float) -> Annotation:  # type: ignore[no-untyped-def]
    ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    ann = Annotation(label, (Polygon(ring),))
    window.documents.push(AddAnnotation(ann))
    return ann


def _anns(window):  # type: ignore[no-untyped-def]
    return window.documents.current.doc.annotations


def _pick_two(window, a: tuple[float, float], b: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    key(window, Qt.Key.Key_V)
    click(window, *a)
    QTest.mouseClick(
        window.view.viewport(), Qt.MouseButton.LeftButton, CTRL, view_point(window, *b)
    )


def _mask(ann: Annotation) -> np.ndarray:
    return polygons_to_mask(ann.polygons, 240, 320)


def test_merge_two_shapes_of_a_label_into_one_and_undo(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    a = _add(window, "cat", 40, 40, 120, 120)
    b = _add(window, "cat", 100, 100, 180, 160)
    union = _mask(a) | _mask(b)
    _pick_two(window, (60, 60), (170, 150))
    assert window.annotator.selection() == [a.id, b.id]
    key(window, Qt.Key.Key_M)
    (merged,) = _anns(window)
    assert merged.id == a.id and merged.label == "cat"
    assert np.array_equal(_mask(merged), union)
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    shapes = json.loads((image_folder / "img1.json").read_text())["shapes"]
    assert len(shapes) == 1 and shapes[0]["shape_type"] == "polygon"
    key(window, Qt.Key.Key_Z, CTRL)  # one step
    assert [x.id for x in _anns(window)] == [a.id, b.id]


def test_merge_refuses_shapes_of_different_labels(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    _add(window, "cat", 40, 40, 120, 120)
    _add(window, "dog", 100, 100, 180, 160)
    messages: list[str] = []
    window.messages.said.connect(messages.append)
    _pick_two(window, (60, 60), (170, 150))
    key(window, Qt.Key.Key_M)
    assert len(_anns(window)) == 2
    assert any("cat" in m and "dog" in m for m in messages), messages


def test_subtract_cuts_the_second_shape_out_of_the_first(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    a = _add(window, "cat", 40, 40, 120, 120)
    b = _add(window, "dog", 100, 100, 180, 160)
    expected = _mask(a) & ~_mask(b)
    _pick_two(window, (60, 60), (170, 150))
    key(window, Qt.Key.Key_M, SHIFT)
    cut, kept = _anns(window)
    assert np.array_equal(_mask(cut), expected) and kept is b
    key(window, Qt.Key.Key_Z, CTRL)
    assert _anns(window)[0] is a


def test_a_locked_shape_refuses_edits_until_unlocked(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    a = _add(window, "cat", 40, 40, 120, 120)
    key(window, Qt.Key.Key_V)
    click(window, 60, 60)
    key(window, Qt.Key.Key_K)
    assert _anns(window)[0].flags.get("locked") is True
    assert "locked" in window.annotations_panel.list.item(0).text()
    locked = _anns(window)[0]
    # dragging a vertex does nothing
    vp = window.view.viewport()
    QTest.mousePress(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_point(window, 120, 120)
    )
    QTest.mouseMove(vp, view_point(window, 160, 160))
    QTest.mouseRelease(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_point(window, 160, 160)
    )
    key(window, Qt.Key.Key_Delete)
    window.annotator.relabel_selected("dog")
    assert _anns(window) == [locked]
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    shape = json.loads((image_folder / "img1.json").read_text())["shapes"][0]
    assert shape["flags"] == {"locked": True}
    key(window, Qt.Key.Key_K)  # unlocked: edits work again
    key(window, Qt.Key.Key_Delete)
    assert _anns(window) == []
    assert a.polygons == locked.polygons


def _circle(window) -> Annotation:  # type: ignore[no-untyped-def]
    yy, xx = np.mgrid[:240, :320]
    mask = (xx - 160) ** 2 + (yy - 120) ** 2 < 70**2
    ann = Annotation.from_mask("cat", mask)
    window.documents.push(AddAnnotation(ann))
    key(window, Qt.Key.Key_V)
    click(window, 160, 120)
    return ann


def _points(ann: Annotation) -> int:
    return sum(len(p.exterior) + sum(len(h) for h in p.holes) for p in ann.polygons)


def test_simpler_and_finer_keys_redraw_the_selected_shape_and_show_its_points(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    ann = _circle(window)
    start = _points(ann)
    assert f"{start} points" in window.annotations_panel.detail.text()
    key(window, Qt.Key.Key_Comma)
    qtbot.waitUntil(lambda: _points(_anns(window)[0]) < start, timeout=5000)
    simpler = _points(_anns(window)[0])
    assert f"{simpler} points" in window.annotations_panel.detail.text()
    key(window, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: _points(_anns(window)[0]) > simpler, timeout=5000)
    key(window, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: _points(_anns(window)[0]) > start, timeout=5000)
    finest = _anns(window)[0]
    # Finer never invents detail: the shape's own pixels, traced more closely.
    assert np.array_equal(_mask(finest), _mask(ann))
    key(window, Qt.Key.Key_Z, CTRL)
    key(window, Qt.Key.Key_Z, CTRL)
    key(window, Qt.Key.Key_Z, CTRL)
    assert _anns(window)[0] is ann


def test_keys_pressed_faster_than_the_outline_is_traced_all_count(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    _circle(window)
    stack = window.documents.current.stack
    before = stack.count()
    for k in (Qt.Key.Key_Comma, Qt.Key.Key_Comma, Qt.Key.Key_Period):
        key(window, k)  # no wait: the first trace is still running
    # Wait as the app's event loop does, letting go of the GIL (QTest.qWait keeps it, so a trace
    # started from a delivered result could not run while qtbot waited).
    deadline = time.monotonic() + 5.0
    while stack.count() < before + 3 and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    texts = [stack.text(i) for i in range(before, stack.count())]
    assert texts == ["Simpler outline", "Simpler outline", "Finer outline"]
