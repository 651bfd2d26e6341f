"""Turn masks, polygons and image crops into Qt drawables, off the GUI thread.

QImage and QPainterPath may be built on any thread (QPixmap may not), so workers call these and hand
finished drawables to the GUI, which then only places them in the scene.
"""

from __future__ import annotations

import hashlib
import weakref
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
        m = cv2.resize(_as_bytes(mask), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    rgba = np.zeros((*m.shape, 4), dtype=np.uint8)
    rgba[m] = (*rgb, alpha)
    return QImage(
        rgba.data, m.shape[1], m.shape[0], rgba.strides[0], QImage.Format.Format_RGBA8888
    ).copy()


def _as_bytes(mask: np.ndarray) -> np.ndarray:
    """An (h, w) bool mask as uint8 0/1 for OpenCV, sharing its memory (a whole-image mask of a
    12,000 x 9,000 photo is 108 MB; a copy per proposal view is what this avoids)."""
    return np.ascontiguousarray(mask, dtype=bool).view(np.uint8)


def mask_outline(patch: MaskPatch) -> QPainterPath:
    """The patch's outline (through the border pixels' centres) as a path in image coordinates."""
    path = QPainterPath()
    contours, _ = cv2.findContours(_as_bytes(patch.mask), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
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
    crop = _thumbnail_pixels(image, x0, y0, x1, y1, size)
    # The mask sampled at the thumbnail's pixels as OpenCV's nearest-neighbour resize samples
    # them, read from the patch directly: the region of a whole-image box is the whole image,
    # and a mask of its size per proposal is what this avoids.
    c = _nearest(size[0], x1 - x0) + x0 - patch.x
    r = _nearest(size[1], y1 - y0) + y0 - patch.y
    c_in, r_in = (c >= 0) & (c < patch.width), (r >= 0) & (r < patch.height)
    m = np.zeros((size[1], size[0]), dtype=bool)
    m[np.ix_(r_in, c_in)] = patch.mask[np.ix_(r[r_in], c[c_in])]
    out = crop.astype(np.float32)
    out[m] = out[m] * 0.45 + np.array(PROPOSAL_RGB, np.float32) * 0.55
    out[~m] *= 0.6
    return rgb_to_qimage(out.astype(np.uint8))


def _nearest(out: int, length: int) -> np.ndarray:
    """The source index of each of `out` samples of `length` pixels, exactly as `cv2.resize`
    with INTER_NEAREST computes them (floor of the index times the inverse of its scale)."""
    picked = np.floor(np.arange(out) * (1.0 / (out / length))).astype(np.intp)
    return np.minimum(picked, length - 1)


#: The last region shrunk for thumbnails: (a weak reference to its image, the region, the pixels).
_last_thumbnail: tuple[weakref.ref[np.ndarray], tuple[int, ...], np.ndarray] | None = None


def _thumbnail_pixels(
    image: np.ndarray, x0: int, y0: int, x1: int, y1: int, size: tuple[int, int]
) -> np.ndarray:
    """The region shrunk to `size`, kept for the last region asked: the ten proposals of a box
    share it, and on a whole-image box of a huge photo shrinking it takes a large part of a
    second. The image is held weakly, so the cache neither keeps it alive nor mistakes another
    image for it."""
    global _last_thumbnail
    region = (x0, y0, x1, y1, *size)
    last = _last_thumbnail
    if last is not None and last[0]() is image and last[1] == region:
        return last[2]
    pixels = np.asarray(cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA))
    _last_thumbnail = (weakref.ref(image), region, pixels)
    return pixels


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
