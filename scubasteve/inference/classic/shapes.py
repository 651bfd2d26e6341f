"""Cheap mask generators and mask variants at working resolution (all masks (h, w) bool).

Watershed from markers grows the object from a core inside the box and the background from the
ring around it, meeting on the strongest edges. The variants (largest part, holes filled, thin
attachments cut, convex hull) give the other readings of an ambiguous boundary: with or without a
strap, a handle, a separate piece.
"""

from __future__ import annotations

import cv2
import numpy as np

from scubasteve.inference.classic.crop import Crop


def ellipse(crop: Crop, scale: float = 1.0) -> np.ndarray:
    """The ellipse inscribed in the box (scaled about its centre)."""
    r = np.sqrt(crop.u * crop.u + crop.v * crop.v)
    inside: np.ndarray = (r <= scale) & crop.inbox
    return inside


def watershed(crop: Crop, core: float) -> np.ndarray:
    """Watershed on the colour image from a central ellipse (`core` of the box) and the ring."""
    markers = np.zeros(crop.shape, np.int32)
    outside = ~crop.inbox
    if not outside.any():  # whole-image box: the window's own border stands in for the ring
        outside = np.zeros(crop.shape, bool)
        outside[[0, -1], :] = True
        outside[:, [0, -1]] = True
    markers[outside] = 1
    markers[ellipse(crop, core)] = 2
    markers[crop.bg_seeds] = 1
    markers[crop.fg_seeds] = 2
    if not (markers == 2).any():
        return np.zeros(crop.shape, bool)
    h, w = crop.shape
    if h < 3 or w < 3:
        small: np.ndarray = (markers == 2) | crop.inbox & (markers != 1)
        return small
    smooth = cv2.GaussianBlur(cv2.cvtColor(crop.rgb, cv2.COLOR_RGB2LAB), (3, 3), 0)
    cv2.watershed(smooth, markers)
    found: np.ndarray = (markers == 2) & crop.inbox
    return found


def largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected part."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    return np.asarray(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled."""
    m = np.pad(mask.astype(np.uint8), 1)
    flood = np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8)
    cv2.floodFill(m, flood, (0, 0), 2)
    filled: np.ndarray = m[1:-1, 1:-1] != 2
    return filled


def without_thin_parts(mask: np.ndarray, radius: int) -> np.ndarray:
    """Morphological opening (disc of `radius` px), then the largest part: cuts thin attachments."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    return largest_part(opened) if opened.any() else opened


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The convex hull of all parts."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    out = np.zeros(mask.shape, np.uint8)
    if contours:
        cv2.fillPoly(out, [cv2.convexHull(np.concatenate(contours))], 1)
    return out.astype(bool)
