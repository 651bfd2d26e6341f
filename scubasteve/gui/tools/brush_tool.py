"""Brush and eraser on the selected annotation's mask; the stroke becomes new polygons on release."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QGraphicsEllipseItem

from scubasteve.core.brush import apply_stroke
from scubasteve.core.commands import replace_geometry
from scubasteve.core.geometry import polygons_to_mask
from scubasteve.gui.canvas.items import Z_TOOL, OverlayImageItem, cosmetic_pen
from scubasteve.gui.render import mask_overlay
from scubasteve.gui.tools.base import BaseTool
from scubasteve.gui.workers import submit


def annotation_window(ann, width: int, height: int, margin: int):  # type: ignore[no-untyped-def]
    """(x0, y0, mask) with mask the annotation's pixels in its bounds grown by `margin`, clipped."""
    b = ann.bounds()
    x0, y0 = max(0, int(b.x0) - margin), max(0, int(b.y0) - margin)
    x1, y1 = min(width, int(np.ceil(b.x1)) + margin), min(height, int(np.ceil(b.y1)) + margin)
    shifted = [p.translated(-x0, -y0) for p in ann.polygons]
    mask = polygons_to_mask(shifted, max(1, y1 - y0), max(1, x1 - x0))
    return x0, y0, np.ascontiguousarray(mask, dtype=np.uint8)


class BrushTool(BaseTool):
    def __init__(self, ctx, pool, erase: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self._pool = pool
        self.erase = erase
        what = "erase from" if erase else "paint onto"
        self.hint = f"{'Eraser' if erase else 'Brush'}: {what} the selected annotation ([ and ] change the size)."
        self.radius = 10.0
        self._window: tuple[int, int, np.ndarray] | None = None
        self._last: QPointF | None = None
        self._target: str | None = None
        self._stroke = np.zeros((0, 0), dtype=np.uint8)  # the pixels this stroke went over
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setPen(cosmetic_pen(QColor(255, 80, 80) if erase else QColor(80, 255, 120), 1))
        self._cursor.setZValue(Z_TOOL)
        self._overlay: OverlayImageItem | None = None

    def activate(self) -> None:
        if self._cursor.scene() is None:
            self.ctx.scene.addItem(self._cursor)

    def deactivate(self) -> None:
        if self._cursor.scene() is not None:
            self.ctx.scene.removeItem(self._cursor)
        self._end_overlay()

    def resize(self, factor: float) -> None:
        self.radius = float(min(max(self.radius * factor, 1.0), 500.0))

    def _selected_annotation(self):  # type: ignore[no-untyped-def]
        state = self.ctx.documents.current
        ann_id = self.ctx.selected()
        if state is None or ann_id is None:
            return None
        try:
            ann = state.doc.get(ann_id)
        except KeyError:
            return None
        return ann if ann.polygons else None

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        ann = self._selected_annotation()
        if ann is None:
            self.message.emit("Select an annotation first (V, then click it), then paint on it.")
            return
        if self.ctx.locked([ann.id]):
            return
        w, h = self.ctx.scene.image_size
        margin = int(max(64, 4 * self.radius))
        self._window = annotation_window(ann, w, h, margin)
        self._stroke = np.zeros_like(self._window[2])
        self._target = ann.id
        self._last = pos
        self._paint(pos)

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        r = self.radius
        self._cursor.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))
        if self._window is not None:
            self._paint(pos)

    def _paint(self, pos: QPointF) -> None:
        if self._window is None:
            return
        x0, y0, mask = self._window
        last = self._last or pos
        a = (round(last.x() - x0), round(last.y() - y0))
        b = (round(pos.x() - x0), round(pos.y() - y0))
        value = 0 if self.erase else 1
        thickness = max(1, round(2 * self.radius))
        cv2.line(mask, a, b, value, thickness=thickness, lineType=cv2.LINE_8)
        cv2.circle(mask, b, max(1, round(self.radius)), value, thickness=-1)
        cv2.line(self._stroke, a, b, 1, thickness=thickness, lineType=cv2.LINE_8)
        cv2.circle(self._stroke, b, max(1, round(self.radius)), 1, thickness=-1)
        self._last = pos
        rect = QRectF(x0, y0, mask.shape[1], mask.shape[0])
        image = mask_overlay(
            mask.astype(bool), (80, 255, 120) if not self.erase else (255, 80, 80), 120
        )
        if self._overlay is None:
            self._overlay = OverlayImageItem(image, rect, Z_TOOL - 1)
            self.ctx.scene.addItem(self._overlay)
        else:
            self._overlay.set_image(image, rect)

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._window is None or event.button() != Qt.MouseButton.LeftButton:
            return
        x0, y0, _mask = self._window
        stroke, target, tolerance = self._stroke, self._target, self.ctx.tolerance()
        min_island, erase = self.ctx.min_island(), self.erase
        self._window, self._last = None, None
        state = self.ctx.documents.current
        if state is None or target is None:
            self._end_overlay()
            return
        key = state.key

        try:
            old = state.doc.get(target).polygons
        except KeyError:
            self._end_overlay()
            return

        def trace():  # type: ignore[no-untyped-def]
            offset = (float(x0), float(y0))
            return apply_stroke(old, stroke, offset, tolerance, erase, min_island)

        def done(polygons) -> None:  # type: ignore[no-untyped-def]
            self._end_overlay()
            doc_state = self.ctx.documents.get(key)
            if doc_state is None:
                return
            if not polygons:
                self.message.emit(
                    "That would erase the whole annotation; delete it instead (Delete)."
                )
                return
            try:
                command = replace_geometry(doc_state.doc, target, polygons)
            except KeyError:
                return
            command.text = "Erase" if self.erase else "Paint"
            self.ctx.documents.push(command, key)

        submit(self._pool, trace, on_done=done, on_error=lambda exc: self.message.emit(str(exc)))

    def _end_overlay(self) -> None:
        if self._overlay is not None:
            self.ctx.scene.removeItem(self._overlay)
            self._overlay = None
