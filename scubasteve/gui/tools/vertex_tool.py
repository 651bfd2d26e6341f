"""Select annotations and edit their vertices: drag moves, double-click on an edge inserts,
right-click (or Backspace on the last touched vertex) deletes. Each edit is one undo step."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem

from scubasteve.core.commands import replace_geometry
from scubasteve.core.geometry import Polygon
from scubasteve.gui.canvas.items import Z_TOOL, cosmetic_pen
from scubasteve.gui.render import polygons_path
from scubasteve.gui.tools.base import BaseTool

GRAB_PX = 7.0
VertexRef = tuple[int, int, int]  # polygon, ring (0 = exterior, 1.. = holes), vertex


def rings_of(polygons: tuple[Polygon, ...]) -> list[list[np.ndarray]]:
    return [[p.exterior.copy(), *(h.copy() for h in p.holes)] for p in polygons]


def polygons_of(rings: list[list[np.ndarray]]) -> tuple[Polygon, ...]:
    return tuple(Polygon(r[0], tuple(r[1:])) for r in rings)


def nearest_vertex(
    rings: list[list[np.ndarray]], x: float, y: float, radius: float
) -> VertexRef | None:
    best, best_d = None, radius
    for pi, poly in enumerate(rings):
        for ri, ring in enumerate(poly):
            d = np.hypot(ring[:, 0] - x, ring[:, 1] - y)
            i = int(np.argmin(d))
            if d[i] <= best_d:
                best, best_d = (pi, ri, i), float(d[i])
    return best


def nearest_edge(rings: list[list[np.ndarray]], x: float, y: float, radius: float):  # type: ignore[no-untyped-def]
    """(polygon, ring, index to insert at, projected point) of the closest edge within `radius`."""
    best, best_d = None, radius
    p = np.array([x, y])
    for pi, poly in enumerate(rings):
        for ri, ring in enumerate(poly):
            a, b = ring, np.roll(ring, -1, axis=0)
            ab = b - a
            t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
            proj = a + ab * t[:, None]
            d = np.hypot(*(proj - p).T)
            i = int(np.argmin(d))
            if d[i] <= best_d:
                best, best_d = (pi, ri, i + 1, proj[i]), float(d[i])
    return best


class VertexTool(BaseTool):
    hint = "Edit: click an annotation, drag its vertices; double-click an edge adds one, right-click deletes one."

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self._rings: list[list[np.ndarray]] = []
        self._drag: VertexRef | None = None
        self._last: VertexRef | None = None
        self._handles: list[QGraphicsRectItem] = []
        self._preview = QGraphicsPathItem()
        self._preview.setPen(cosmetic_pen(QColor("white"), 1.5, Qt.PenStyle.DashLine))
        self._preview.setZValue(Z_TOOL)

    def activate(self) -> None:
        if self._preview.scene() is None:
            self.ctx.scene.addItem(self._preview)
        self.refresh()

    def deactivate(self) -> None:
        self._clear_handles()
        if self._preview.scene() is not None:
            self.ctx.scene.removeItem(self._preview)

    def refresh(self) -> None:
        """Show the handles of the selected annotation (after selection or document changes)."""
        self._drag = None
        state = self.ctx.documents.current
        ann_id = self.ctx.selected()
        self._rings = []
        if state is not None and ann_id is not None:
            try:
                ann = state.doc.get(ann_id)
            except KeyError:
                ann = None
            if ann is not None and ann.polygons:
                self._rings = rings_of(ann.polygons)
        self._draw()

    def _clear_handles(self) -> None:
        for h in self._handles:
            if h.scene() is not None:
                self.ctx.scene.removeItem(h)
        self._handles = []

    def _draw(self) -> None:
        self._clear_handles()
        self._preview.setPath(
            polygons_path(polygons_of(self._rings)) if self._rings else QPainterPath()
        )
        for poly in self._rings:
            for ring in poly:
                for x, y in ring:
                    h = QGraphicsRectItem(-3.5, -3.5, 7, 7)
                    h.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
                    h.setPos(float(x), float(y))
                    h.setBrush(QBrush(QColor("white")))
                    h.setPen(cosmetic_pen(QColor("black"), 1))
                    h.setZValue(Z_TOOL + 1)
                    self.ctx.scene.addItem(h)
                    self._handles.append(h)

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        radius = self.screen_px(GRAB_PX)
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            if event.button() == Qt.MouseButton.LeftButton:  # several shapes: merge, subtract
                self.ctx.toggle_select(self.ctx.scene.annotation_at(pos.x(), pos.y()))
            return
        hit = nearest_vertex(self._rings, pos.x(), pos.y(), radius) if self._rings else None
        if hit is not None and self._is_locked():
            return
        if event.button() == Qt.MouseButton.RightButton:
            if hit is not None:
                self._delete_vertex(hit)
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if hit is not None:
            self._drag = self._last = hit
            return
        if self._rings and nearest_edge(self._rings, pos.x(), pos.y(), radius) is not None:
            # On the selected shape's outline (the first press of a double-click that inserts a
            # vertex): keep it selected. Points on a right or bottom edge are outside its path,
            # so selecting by "contains" dropped the selection there (issue 22).
            return
        self.ctx.select(self.ctx.scene.annotation_at(pos.x(), pos.y()))

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._drag is None:
            return
        pi, ri, vi = self._drag
        w, h = self.ctx.scene.image_size
        self._rings[pi][ri][vi] = (min(max(pos.x(), 0.0), w), min(max(pos.y(), 0.0), h))
        self._preview.setPath(polygons_path(polygons_of(self._rings)))
        index = (
            sum(len(r) for p in self._rings[:pi] for r in p)
            + sum(len(r) for r in self._rings[pi][:ri])
            + vi
        )
        if index < len(self._handles):
            self._handles[index].setPos(pos)

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._drag is None:
            return
        self._drag = None
        self._commit("Move vertex")

    def _is_locked(self) -> bool:
        ann_id = self.ctx.selected()
        return ann_id is not None and self.ctx.locked([ann_id])

    def double_click(self, pos: QPointF, event: QMouseEvent) -> None:
        if not self._rings or event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return
        hit = nearest_edge(self._rings, pos.x(), pos.y(), self.screen_px(GRAB_PX))
        if hit is None:
            return
        if self._is_locked():
            return
        pi, ri, at, point = hit
        self._rings[pi][ri] = np.insert(self._rings[pi][ri], at, point, axis=0)
        self._last = (pi, ri, at)
        self._commit("Insert vertex")

    def key(self, event: QKeyEvent) -> bool:
        if event.key() == Qt.Key.Key_Backspace and self._last is not None:
            if not self._is_locked():
                self._delete_vertex(self._last)
            return True
        return False

    def _delete_vertex(self, ref: VertexRef) -> None:
        pi, ri, vi = ref
        ring = self._rings[pi][ri]
        if len(ring) <= 3:
            self.message.emit(
                "A ring needs at least three vertices; delete the annotation instead."
            )
            return
        self._rings[pi][ri] = np.delete(ring, vi, axis=0)
        self._last = None
        self._commit("Delete vertex")

    def _commit(self, text: str) -> None:
        state = self.ctx.documents.current
        ann_id = self.ctx.selected()
        if state is None or ann_id is None:
            return
        command = replace_geometry(state.doc, ann_id, polygons_of(self._rings))
        command.text = text
        self.ctx.documents.push(command)
        self.refresh()
