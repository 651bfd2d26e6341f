"""The canvas view: zoom at the cursor, pan with space-drag or the middle button, fit and 1:1.

Mouse input in image coordinates goes to the active tool; the view itself knows nothing of boxes,
proposals or polygons.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QWidget

from scubasteve.gui.canvas.scene import CanvasScene

MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0


class Tool(Protocol):
    """What the view asks of the active tool. Positions are in image (scene) coordinates."""

    def press(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def move(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def release(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def double_click(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def key(self, event: QKeyEvent) -> bool: ...


class ImageView(QGraphicsView):
    zoom_changed = Signal(float)

    def __init__(self, scene: CanvasScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.canvas = scene
        self.tool: Tool | None = None
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # see set_zoom
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setBackgroundBrush(Qt.GlobalColor.darkGray)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self._space = False
        self._pan_from: QPointF | None = None
        self._auto_fit = True

    # -- zoom ---------------------------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return float(self.transform().m11())

    def set_zoom(self, zoom: float, at: QPointF | None = None) -> None:
        """Zoom to `zoom`; the image point under viewport position `at` (default: the centre)
        stays where it is, as far as the scroll range allows."""
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        at = QPointF(self.viewport().rect().center()) if at is None else at
        # Done by hand: Qt's AnchorUnderMouse needs the cursor position from mouse-move events that
        # went through QGraphicsView's own handler, which the tools take over, so it anchored at a
        # stale point and the object under the pointer slid away (issue 22).
        under = self.viewportTransform().inverted()[0].map(at)
        factor = zoom / self.zoom
        self.scale(factor, factor)
        delta = self.viewportTransform().map(under) - at
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(delta.x()))
        v.setValue(v.value() + round(delta.y()))
        self._auto_fit = False
        self.zoom_changed.emit(self.zoom)

    def fit(self) -> None:
        rect: QRectF = self.canvas.sceneRect()
        if rect.width() > 0 and rect.height() > 0:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._auto_fit = True
        self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom * (1.25**steps), at=event.position())
        event.accept()

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()

    # -- pan and tool input -------------------------------------------------------------------------

    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _start_pan(self, event: QMouseEvent) -> bool:
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return True
        return False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        if self._start_pan(event):
            return
        if self.tool is not None and self.canvas.image_item is not None:
            self.tool.press(self._scene_pos(event), event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            self._auto_fit = False
            return
        if self.tool is not None and self.canvas.image_item is not None:
            self.tool.move(self._scene_pos(event), event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor
            )
            return
        if self.tool is not None and self.canvas.image_item is not None:
            self.tool.release(self._scene_pos(event), event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.tool is not None and self.canvas.image_item is not None:
            self.tool.double_click(self._scene_pos(event), event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if self.tool is not None and self.tool.key(event):
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        super().keyReleaseEvent(event)
