"""Corrective clicks answered with the network's map: edits of the mask being corrected.

A click says that the pixel under it is wrong in the mask the user is correcting (`previous`). The
map usually knows the region that pixel belongs to: for a positive click, the connected part of
the map above a threshold that contains the click (added to the mask); for a negative click, the
connected part of the mask below a threshold that contains it (cut out). The threshold follows
the map's value at the click, so a part the network was unsure of can still be taken whole. Each
edit changes the mask only in that region and keeps the rest exactly (ADR 0104), in two sizes:
the whole region, and the region near the click (within a radius that grows with the error's size).
When the map does not separate the clicked part (the region is only the click), nothing is
proposed here and the classic engine's local edits answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.isnet.crops import BoxMap, ProbMap, Window, patch_in_region, upscale_mask

#: Regions smaller than this share of the box are too small to be a part the map knows.
MIN_REGION = 0.0005
#: The near-the-click edit keeps the region within this many times the click's distance to the
#: edge of its error (the click is at the error's interior-most point).
NEAR = 2.5


def _component(mask: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 8-connected part of `mask` that contains (row, col) (empty if that pixel is off)."""
    if not mask[row, col]:
        return np.zeros_like(mask)
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels == labels[row, col]


def _thresholds(value: float, positive: bool) -> list[float]:
    """Map thresholds that put a click of map value `value` on the side it asks for."""
    if positive:
        ts = [0.5] if value > 0.5 else []
        ts += [t for t in (value * 0.5, value * 0.8) if 0.02 <= t < 0.5]
    else:
        ts = [0.5] if value < 0.5 else []
        ts += [t for t in (value + (1 - value) * 0.5, value + (1 - value) * 0.2) if 0.5 < t <= 0.98]
    return ts


def click_edits(
    bm: BoxMap,
    previous: MaskPatch,
    points: Sequence[PromptPoint],
    within: np.ndarray | None = None,
    prefix: str = "map-edit",
) -> list[tuple[str, MaskPatch]]:
    """(name, mask) edits of `previous` answering the last click with the map (module docstring).

    `within` (bool, the region's grid) limits the edits to where the map was computed (a zoomed
    pass covers part of the box only); `prefix` names them.
    """
    if not points:
        return []
    click = points[-1]
    x0, y0 = bm.region[:2]
    scale = bm.scale
    h, w = bm.prob.shape
    row = int(np.floor((click.y - y0) * scale))
    col = int(np.floor((click.x - x0) * scale))
    if not (0 <= row < h and 0 <= col < w):
        return []
    mask = patch_in_region(previous, bm.region, bm.prob.shape) > 0.5
    if bool(mask[row, col]) == click.positive:
        return []  # the click already agrees with the mask it corrects
    value = float(bm.prob[row, col])
    wrong = ~mask if click.positive else mask
    # The click's distance to the edge of its error region: the scale of what it asks to change.
    dist = cv2.distanceTransform(wrong.astype(np.uint8), cv2.DIST_L2, 3)[row, col]
    yy, xx = np.ogrid[:h, :w]
    near = (yy - row) ** 2 + (xx - col) ** 2 <= (NEAR * max(dist, 2.0)) ** 2
    out: list[tuple[str, MaskPatch]] = []
    seen: list[np.ndarray] = []
    for t in _thresholds(value, click.positive):
        side = bm.prob > t if click.positive else (bm.prob < t) & mask
        if within is not None:
            side &= within
        region = _component(side, row, col)
        if region.sum() < max(2, MIN_REGION * region.size):
            continue
        for label, part in (("", region), ("-near", region & near)):
            if any(np.array_equal(part, s) for s in seen) or not part.any():
                continue
            seen.append(part)
            edited = _apply(previous, bm, part, click.positive)
            if edited is not None:
                sign = "+" if click.positive else "-"
                out.append((f"{prefix}{sign}{t:.2f}{label}", edited))
    return out


def zoom_window(bm: BoxMap, click: PromptPoint, context: float) -> Window:
    """A window centred on a click, half the box's longer side wide (at least 48 px), for a second
    look by the network at the part the click is about."""
    x0, y0, x1, y1 = bm.region
    half = max(24.0, 0.25 * max(x1 - x0, y1 - y0))
    return Window.around(
        Box(click.x - half, click.y - half, click.x + half, click.y + half), context
    )


def zoomed(bm: BoxMap, zoom: ProbMap) -> tuple[BoxMap, np.ndarray]:
    """The box's region seen through a zoomed map, and where that map says anything (the grid)."""
    x0, y0, x1, y1 = bm.region
    prob = zoom.region(x0, y0, x1, y1, bm.scale)
    inside = zoom.region_mask(x0, y0, x1, y1, bm.scale)
    return BoxMap(zoom, bm.region, bm.scale, prob), inside


def _apply(previous: MaskPatch, bm: BoxMap, part: np.ndarray, positive: bool) -> MaskPatch | None:
    """`previous` with `part` (on the region's working grid) added or removed, at full resolution."""
    x0, y0, x1, y1 = bm.region
    full_part = upscale_mask(part, x1 - x0, y1 - y0)
    ux0, uy0 = min(previous.x, x0), min(previous.y, y0)
    ux1 = max(previous.x + previous.width, x1)
    uy1 = max(previous.y + previous.height, y1)
    canvas = np.zeros((uy1 - uy0, ux1 - ux0), dtype=bool)
    px, py = previous.x - ux0, previous.y - uy0
    canvas[py : py + previous.height, px : px + previous.width] = previous.mask
    rx, ry = x0 - ux0, y0 - uy0
    target = canvas[ry : ry + (y1 - y0), rx : rx + (x1 - x0)]
    if positive:
        target |= full_part
    else:
        target &= ~full_part
    if not canvas.any():
        return None
    return _tight(canvas, ux0, uy0)


def _tight(mask: np.ndarray, x: int, y: int) -> MaskPatch:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return MaskPatch(mask[r0:r1, c0:c1].copy(), x + int(c0), y + int(r0))
