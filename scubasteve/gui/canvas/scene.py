"""The canvas scene: places the image, annotations, the current proposal and tool feedback."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene

from scubasteve.core.annotation import Annotation
from scubasteve.core.geometry import Box
from scubasteve.gui.canvas.items import (
    Z_PROPOSAL,
    Z_TOOL,
    AnnotationItem,
    OverlayImageItem,
    PointMarker,
    PyramidImageItem,
    cosmetic_pen,
)
from scubasteve.gui.render import ProposalView
from scubasteve.inference.base import PromptPoint


class CanvasScene(QGraphicsScene):
    """Scene coordinates are image pixel coordinates (pixel (r, c) covers [c, c+1] x [r, r+1])."""

    def __init__(self) -> None:
        super().__init__()
        self.image_item: PyramidImageItem | None = None
        self._annotation_items: dict[str, AnnotationItem] = {}
        self._proposal_overlay: OverlayImageItem | None = None
        self._proposal_outline = QGraphicsPathItem()
        self._proposal_outline.setPen(cosmetic_pen(QColor(255, 140, 0), 2.5))
        self._proposal_outline.setZValue(Z_PROPOSAL + 1)
        self.addItem(self._proposal_outline)
        self._box_item = QGraphicsRectItem()
        self._box_item.setPen(cosmetic_pen(QColor(0, 200, 255), 1.5))
        self._box_item.setZValue(Z_TOOL)
        self._box_item.hide()
        self.addItem(self._box_item)
        self._markers: list[PointMarker] = []
        self.instance_colors = False  # a colour per object instead of per label (a setting)

    # -- image --------------------------------------------------------------------------------------

    def set_image(self, levels: Sequence[np.ndarray] | None) -> None:
        if self.image_item is not None:
            self.removeItem(self.image_item)
            self.image_item = None
        self.sync_annotations([], set(), None)
        self.show_proposal(None)
        self.set_box(None)
        self.set_points(())
        if levels:
            self.image_item = PyramidImageItem(levels)
            self.addItem(self.image_item)
            self.setSceneRect(self.image_item.boundingRect())
        else:
            self.setSceneRect(QRectF(0, 0, 1, 1))

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image, (0, 0) when none."""
        if self.image_item is None:
            return (0, 0)
        r = self.image_item.boundingRect()
        return (int(r.width()), int(r.height()))

    # -- annotations --------------------------------------------------------------------------------

    def sync_annotations(
        self,
        annotations: Iterable[Annotation],
        hidden: set[str],
        selected: str | None,
        also: Collection[str] = (),
    ) -> None:
        """Show exactly these annotations; unchanged ones (same object) keep their items.
        `selected` and `also` are drawn selected."""
        wanted = {a.id: a for a in annotations if a.id not in hidden}
        for ann_id in list(self._annotation_items):
            item = self._annotation_items[ann_id]
            if (
                wanted.get(ann_id) is not item.annotation
                or item.per_instance != self.instance_colors
            ):
                self.removeItem(item)
                del self._annotation_items[ann_id]
        for ann_id, ann in wanted.items():
            item = self._annotation_items.get(ann_id)
            if item is None:
                item = AnnotationItem(ann, self.instance_colors)
                self._annotation_items[ann_id] = item
                self.addItem(item)
            item.set_selected(ann_id == selected or ann_id in also)

    def annotation_at(self, x: float, y: float) -> str | None:
        """Id of the smallest visible annotation containing the point, if any."""
        from PySide6.QtCore import QPointF

        hits = [
            item for item in self._annotation_items.values() if item.path().contains(QPointF(x, y))
        ]
        if not hits:
            return None
        return min(hits, key=lambda i: i.annotation.area()).annotation.id

    # -- proposals and tool feedback ----------------------------------------------------------------

    def show_proposal(self, view: ProposalView | None) -> None:
        if view is None:
            if self._proposal_overlay is not None:
                self._proposal_overlay.hide()
            self._proposal_outline.setPath(QPainterPath())
            return
        p = view.proposal.patch
        rect = QRectF(p.x, p.y, p.width, p.height)
        if self._proposal_overlay is None:
            self._proposal_overlay = OverlayImageItem(view.overlay, rect)
            self.addItem(self._proposal_overlay)
        else:
            self._proposal_overlay.set_image(view.overlay, rect)
        self._proposal_overlay.show()
        self._proposal_outline.setPath(view.outline)

    def set_box(self, box: Box | None, pending: bool = False) -> None:
        if box is None:
            self._box_item.hide()
            return
        self._box_item.setRect(QRectF(box.x0, box.y0, box.width, box.height))
        color = QColor(0, 200, 255) if not pending else QColor(255, 255, 255)
        self._box_item.setPen(cosmetic_pen(color, 1.5))
        self._box_item.show()

    def set_points(self, points: Iterable[PromptPoint]) -> None:
        for marker in self._markers:
            self.removeItem(marker)
        self._markers = [PointMarker(p.x, p.y, p.positive, n) for n, p in enumerate(points, 1)]
        for marker in self._markers:
            self.addItem(marker)
