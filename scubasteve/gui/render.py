"""Turn masks, polygons and image crops into Qt drawables, off the GUI thread.

QImage and QPainterPath may be built on any thread (QPixmap may not), so workers call these and hand
finished drawables to the GUI, which then only places them in the scene.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, QPolygonF

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box, Polygon
from scubasteve.inference.base import PromptPoint, Proposal

#: Overlays of masks larger than this (longer side, px) are drawn from a reduced copy, scaled up.
OVERLAY_MAX_SIDE = 1024
THUMB_SIDE = 96
PROPOSAL_RGB = (255, 140, 0)


def label_color(label: str) -> QColor:
    """A stable, well-saturated colour per label (the same in every session)."""
    h = int(hashlib.md5(label.encode("utf-8")).hexdigest()[:4], 16) % 360
    return QColor.fromHsv(h, 200, 255)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """An (H, W, 3) uint8 RGB array as a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def rgb_view_qimage(rgb: np.ndarray) -> QImage:
    """A QImage sharing the array's memory (no copy); the caller keeps `rgb` alive as long."""
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


def mask_overlay(mask: np.ndarray, rgb: tuple[int, int, int], alpha: int = 110) -> QImage:
    """A translucent RGBA image of an (h, w) bool mask, reduced when larger than OVERLAY_MAX_SIDE."""
    h, w = mask.shape
    scale = min(1.0, OVERLAY_MAX_SIDE / max(h, w))
    m = mask
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    rgba = np.zeros((*m.shape, 4), dtype=np.uint8)
    rgba[m] = (*rgb, alpha)
    return QImage(
        rgba.data, m.shape[1], m.shape[0], rgba.strides[0], QImage.Format.Format_RGBA8888
    ).copy()


def mask_outline(patch: MaskPatch) -> QPainterPath:
    """The patch's outline (through the border pixels' centres) as a path in image coordinates."""
    path = QPainterPath()
    contours, _ = cv2.findContours(
        patch.mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64) + np.array([patch.x + 0.5, patch.y + 0.5])
        if len(pts) >= 2:
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in pts]))
            path.closeSubpath()
    return path


def polygons_path(polygons: Sequence[Polygon]) -> QPainterPath:
    """Polygons with holes as one odd-even-filled path."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.OddEvenFill)
    for poly in polygons:
        for ring in (poly.exterior, *poly.holes):
            if len(ring) >= 2:
                path.addPolygon(QPolygonF([QPointF(float(x), float(y)) for x, y in ring]))
                path.closeSubpath()
    return path


def proposal_thumbnail(
    image: np.ndarray, patch: MaskPatch, box: Box, side: int = THUMB_SIDE
) -> QImage:
    """A small picture of the box region with the mask tinted, `side` px on its longer side."""
    ih, iw = image.shape[:2]
    region = box.grow(0.1).clip(iw, ih)
    x0, y0 = int(region.x0), int(region.y0)
    x1, y1 = max(x0 + 1, int(np.ceil(region.x1))), max(y0 + 1, int(np.ceil(region.y1)))
    scale = side / max(x1 - x0, y1 - y0)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    crop = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    full = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    px0, py0 = max(patch.x, x0), max(patch.y, y0)
    px1, py1 = min(patch.x + patch.width, x1), min(patch.y + patch.height, y1)
    if px1 > px0 and py1 > py0:
        full[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] = patch.mask[
            py0 - patch.y : py1 - patch.y, px0 - patch.x : px1 - patch.x
        ]
    m = cv2.resize(full, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    out = crop.astype(np.float32)
    out[m] = out[m] * 0.45 + np.array(PROPOSAL_RGB, np.float32) * 0.55
    out[~m] *= 0.6
    return rgb_to_qimage(out.astype(np.uint8))


@dataclass(frozen=True, eq=False)
class ProposalView:
    """One proposal with everything needed to draw it; built by a worker."""

    proposal: Proposal
    overlay: QImage
    outline: QPainterPath
    thumbnail: QImage


@dataclass(eq=False)
class ProposalSet:
    """The answer to one proposal request (`request_id`), best proposal first."""

    request_id: int
    image_key: str
    box: Box
    points: tuple[PromptPoint, ...]
    views: list[ProposalView]
    engine: str
    seconds: float
    partial: bool = False  # True while the engine is still finding proposals
    notes: list[str] = field(default_factory=list)


def build_view(image: np.ndarray, proposal: Proposal, box: Box) -> ProposalView:
    return ProposalView(
        proposal=proposal,
        overlay=mask_overlay(proposal.patch.mask, PROPOSAL_RGB),
        outline=mask_outline(proposal.patch),
        thumbnail=proposal_thumbnail(image, proposal.patch, box),
    )


def build_views(
    image: np.ndarray,
    proposals: Sequence[Proposal],
    box: Box,
    ready: dict[int, ProposalView] | None = None,
) -> list[ProposalView]:
    """Views of `proposals`, reusing those in `ready` (keyed by id of the proposal) already built."""
    ready = ready or {}
    return [ready.get(id(p)) or build_view(image, p, box) for p in proposals]
