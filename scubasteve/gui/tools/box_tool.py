"""The box tool: drag a box, proposals are requested on release; clicks inside correct them.

A click (no drag) inside the box while proposals are shown adds a point: left button positive,
right button negative; Backspace (or Ctrl+Z, see the window) removes the last click. A drag anywhere
starts a new box, which makes the pending request obsolete. On a read-only image (its annotation
file cannot be read) the tool refuses with a notice instead of proposing masks that cannot be saved.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent

from scubasteve.core.geometry import Box
from scubasteve.gui.tools.base import BaseTool

#: A press and release closer than this (screen pixels) is a click, not a box.
CLICK_PX = 4.0


class BoxTool(BaseTool):
    hint = "Drag a box around an object: proposals appear here."

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self._start: QPointF | None = None
        self._button = Qt.MouseButton.NoButton

    def deactivate(self) -> None:
        self._start = None
        self.ctx.scene.set_box(self.ctx.proposals.box)

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        if self.refuse_read_only():
            return
        self._start, self._button = pos, event.button()
        if event.button() == Qt.MouseButton.LeftButton:
            self.ctx.proposals.begin()

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._start is None or self._button != Qt.MouseButton.LeftButton:
            return
        if self._is_click(pos):
            return
        self.ctx.scene.set_box(self._box(pos, self._start))

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._start is None or event.button() != self._button:
            return
        start, button = self._start, self._button
        self._start = None
        proposals = self.ctx.proposals
        if self._is_click(pos, start):
            box = proposals.box
            inside = box is not None and box.x0 <= pos.x() <= box.x1 and box.y0 <= pos.y() <= box.y1
            if inside and proposals.active:
                proposals.add_point(pos.x(), pos.y(), button == Qt.MouseButton.LeftButton)
                self.ctx.scene.set_points(proposals.points)
            return
        if button != Qt.MouseButton.LeftButton:
            return
        box = self._box(pos, start)
        if box.width < 1 or box.height < 1:
            self.ctx.scene.set_box(proposals.box)
            return
        self.ctx.scene.set_box(box, pending=True)
        self.ctx.scene.set_points(())
        proposals.request(box)

    def key(self, event: QKeyEvent) -> bool:
        if event.key() == Qt.Key.Key_Backspace and self.ctx.proposals.points:
            self.ctx.proposals.remove_last_point()
            self.ctx.scene.set_points(self.ctx.proposals.points)
            return True
        return False

    def _is_click(self, pos: QPointF, start: QPointF | None = None) -> bool:
        start = start or self._start
        if start is None:
            return False
        d = self.screen_px(CLICK_PX)
        return abs(pos.x() - start.x()) < d and abs(pos.y() - start.y()) < d

    def _box(self, pos: QPointF, start: QPointF) -> Box:
        w, h = self.ctx.scene.image_size
        return Box.from_points(start.x(), start.y(), pos.x(), pos.y()).clip(w, h)
