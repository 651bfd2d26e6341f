"""Scene items: the image (drawn from a pyramid level), mask overlays, annotation outlines, markers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from scubasteve.core.annotation import Annotation
from scubasteve.gui.render import label_color, polygons_path, rgb_view_qimage

Z_IMAGE, Z_ANNOTATION, Z_SELECTED, Z_PROPOSAL, Z_TOOL = 0, 10, 15, 20, 30


class PyramidImageItem(QGraphicsItem):
    """The image at scene (0, 0), one scene unit per image pixel, painted from a pyramid level.

    Only the exposed part is drawn, from the coarsest level that still has one source pixel per
    screen pixel, so zooming and panning stay smooth on 100-megapixel images.
    """

    def __init__(self, levels: Sequence[np.ndarray]) -> None:
        super().__init__()
        self._arrays = list(levels)  # the QImages below share these buffers
        self._images = [rgb_view_qimage(a) for a in self._arrays]
        h, w = self._arrays[0].shape[:2]
        self._rect = QRectF(0, 0, w, h)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(Z_IMAGE)

    def boundingRect(self) -> QRectF:
        return self._rect

    def level_for(self, lod: float) -> int:
        """Index of the level to draw at `lod` screen pixels per image pixel."""
        best = 0
        full_w = self._rect.width()
        for i, img in enumerate(self._images):
            if img.width() / full_w >= lod * 0.999:
                best = i
        return best

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        img = self._images[self.level_for(lod)]
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        sx = img.width() / self._rect.width()
        sy = img.height() / self._rect.height()
        source = QRectF(target.x() * sx, target.y() * sy, target.width() * sx, target.height() * sy)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 1.0)
        painter.drawImage(target, img, source)


class OverlayImageItem(QGraphicsItem):
    """A (possibly reduced) RGBA image stretched over `rect` in scene coordinates: a mask tint."""

    def __init__(self, image: QImage, rect: QRectF, z: float = Z_PROPOSAL) -> None:
        super().__init__()
        self._image = image
        self._rect = QRectF(rect)
        self.setZValue(z)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_image(self, image: QImage, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._image, self._rect = image, QRectF(rect)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.drawImage(self._rect, self._image)


def cosmetic_pen(
    color: QColor, width: float = 2.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine
) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # the same on-screen width at every zoom
    return pen


class AnnotationItem(QGraphicsPathItem):
    """One annotation drawn as a filled, outlined path; dashed while it awaits review."""

    def __init__(self, annotation: Annotation, per_instance: bool = False) -> None:
        super().__init__()
        self.annotation = annotation
        self.per_instance = per_instance  # a colour per object (its id), not per label
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setPath(annotation_path(annotation))
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        ann = self.annotation
        color = label_color(ann.id if self.per_instance else ann.label)
        review = self.annotation.needs_review
        style = Qt.PenStyle.DashLine if review else Qt.PenStyle.SolidLine
        if ann.locked:
            style = Qt.PenStyle.DotLine
        self.setPen(
            cosmetic_pen(QColor("white") if selected else color, 3 if selected else 2, style)
        )
        fill = QColor(color)
        fill.setAlpha(90 if selected else 55)
        self.setBrush(QBrush(fill))
        self.setZValue(Z_SELECTED if selected else Z_ANNOTATION)


def annotation_path(annotation: Annotation) -> QPainterPath:
    if annotation.polygons:
        return polygons_path(annotation.polygons)
    path = QPainterPath()
    pts = annotation.points
    if pts is not None and len(pts):
        path.moveTo(QPointF(*pts[0]))
        for x, y in pts[1:]:
            path.lineTo(QPointF(x, y))
        if len(pts) == 1:
            path.addEllipse(QPointF(*pts[0]), 3, 3)
    return path


class PointMarker(QGraphicsEllipseItem):
    """A corrective click, numbered: green for positive, red for negative; constant size on screen."""

    def __init__(self, x: float, y: float, positive: bool, number: int = 0) -> None:
        super().__init__(-5, -5, 10, 10)
        if number:
            text = QGraphicsSimpleTextItem(str(number), self)
            font = text.font()
            font.setBold(True)
            text.setFont(font)
            text.setBrush(QBrush(QColor("white")))
            text.setPen(QPen(QColor("black"), 0.5))
            text.setPos(6, -8)
        self.setPos(x, y)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        color = QColor(40, 220, 60) if positive else QColor(230, 40, 40)
        self.setBrush(QBrush(color))
        self.setPen(cosmetic_pen(QColor("white"), 1.5))
        self.setZValue(Z_TOOL)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
