"""The polygon tool: click vertices; Enter, a double-click or a click on the first vertex closes.

The fallback when no engine helps. Backspace removes the last vertex, Escape cancels.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainterPath, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem

from scubasteve.core.annotation import Annotation
from scubasteve.core.commands import AddAnnotation
from scubasteve.core.geometry import Polygon
from scubasteve.gui.canvas.items import Z_TOOL, cosmetic_pen
from scubasteve.gui.tools.base import BaseTool

CLOSE_PX = 8.0


class PolygonTool(BaseTool):
    hint = "Polygon: click the vertices; Enter or a click on the first one closes it, Backspace removes the last."

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.points: list[tuple[float, float]] = []
        self._hover: QPointF | None = None
        self._started: float | None = None
        self._item = QGraphicsPathItem()
        self._item.setPen(cosmetic_pen(QColor(255, 230, 0), 1.5))
        self._item.setZValue(Z_TOOL)

    def activate(self) -> None:
        if self._item.scene() is None:
            self.ctx.scene.addItem(self._item)

    def deactivate(self) -> None:
        self.cancel()
        if self._item.scene() is not None:
            self.ctx.scene.removeItem(self._item)

    def cancel(self) -> None:
        self.points, self._started = [], None
        self._redraw()

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.refuse_read_only():
            return
        if self._started is None:
            self._started = time.perf_counter()
        if len(self.points) >= 3:
            x0, y0 = self.points[0]
            if abs(pos.x() - x0) < self.screen_px(CLOSE_PX) and abs(pos.y() - y0) < self.screen_px(
                CLOSE_PX
            ):
                self.finish()
                return
        w, h = self.ctx.scene.image_size
        self.points.append((min(max(pos.x(), 0.0), w), min(max(pos.y(), 0.0), h)))
        self._redraw()

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        self._hover = pos
        if self.points:
            self._redraw()

    def double_click(self, pos: QPointF, event: QMouseEvent) -> None:
        self.finish()

    def key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()
            return True
        if event.key() == Qt.Key.Key_Escape and self.points:
            self.cancel()
            return True
        if event.key() == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            self._redraw()
            return True
        return False

    def finish(self) -> bool:
        # A double-click also delivers a press at the same spot; drop repeated vertices.
        pts = [p for i, p in enumerate(self.points) if i == 0 or p != self.points[i - 1]]
        if len(pts) < 3:
            self.message.emit("A polygon needs at least three vertices.")
            return False
        label = self.ctx.label()
        if not label:
            self.message.emit("Choose a label first (L).")
            return False
        try:
            polygon = Polygon(np.asarray(pts, dtype=np.float64))
        except ValueError as exc:
            self.message.emit(f"That polygon cannot be used: {exc}")
            return False
        seconds = time.perf_counter() - self._started if self._started else None
        ann = Annotation(
            label=label,
            polygons=(polygon,),
            source="manual",
            seconds=round(seconds, 2) if seconds else None,
        )
        self.cancel()
        self.ctx.documents.push(AddAnnotation(ann))
        return True

    def _redraw(self) -> None:
        path = QPainterPath()
        if self.points:
            pts = [QPointF(x, y) for x, y in self.points]
            if self._hover is not None:
                pts.append(self._hover)
            path.addPolygon(QPolygonF(pts))
        self._item.setPath(path)
