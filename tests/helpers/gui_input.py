"""Driving the real window like a user: drags, clicks and keys in image coordinates."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from scubasteve.core.geometry import Box


def view_point(window, x: float, y: float) -> QPoint:  # type: ignore[no-untyped-def]
    return window.view.mapFromScene(x, y)


def drag_box(window, box: Box) -> None:  # type: ignore[no-untyped-def]
    vp = window.view.viewport()
    a, b = view_point(window, box.x0, box.y0), view_point(window, box.x1, box.y1)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, (a + b) / 2)
    QTest.mouseMove(vp, b)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def click(window, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:  # type: ignore[no-untyped-def]
    vp = window.view.viewport()
    QTest.mouseClick(vp, button, Qt.KeyboardModifier.NoModifier, view_point(window, x, y))


def key(window, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:  # type: ignore[no-untyped-def]
    QTest.keyClick(window.view, k, modifier)


def accept_box(window, qtbot, box: Box) -> None:  # type: ignore[no-untyped-def]
    """Drag `box`, wait for all its proposals, press Enter, wait for the new annotation."""
    before = len(window.documents.current.doc.annotations)
    drag_box(window, box)
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and not window.proposals.result.partial,
        timeout=5000,
    )
    QTest.keyClick(window.view, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: len(window.documents.current.doc.annotations) == before + 1, timeout=5000
    )
