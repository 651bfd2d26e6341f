"""Carrying shapes from one image to the next (video frames, near-identical photos); no Qt.

A shape of the previous image is first *followed*: the content of its box (grown a little) is
looked for in the new image by normalised cross-correlation (OpenCV's `matchTemplate`) within a
window around the old place, and the shape's mask moves by the best shift (`follow`). The moved
box then goes to the active engine with the moved mask as the prior (`propose(box,
previous=mask)`), and `refit` keeps the engine's proposal that agrees with the moved mask
(IoU >= `REFIT_AGREEMENT`: the same object, its outline fitted to the new image); when none does,
the moved mask itself is the better guess. Measured in docs/app.md: on a camera pan over coco128
photos and on DAVIS frames the moved mask alone is far closer to the truth than any box proposal
of the classic engine, which is why the engine may only adjust it, not replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scubasteve.core.annotation import Annotation, MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import Proposal, patch_iou

#: An engine proposal replaces the moved mask only when it overlaps it at least this much.
REFIT_AGREEMENT = 0.9
#: The template is the shape's box grown by this fraction of its size on each side (context).
TEMPLATE_GROW = 0.1
#: The search reaches this fraction of the box size (plus `SEARCH_MIN_PX`) beyond the old place.
SEARCH_REACH = 0.5
SEARCH_MIN_PX = 16
#: Templates are matched at most this many pixels long (larger boxes are matched scaled down).
MATCH_SIDE_PX = 256
#: The engine gets the moved box grown by this fraction (the object may have grown a little).
BOX_GROW = 0.05


@dataclass(frozen=True)
class Shift:
    """Where a box's content went: `dx`, `dy` in pixels; `score` the normalised cross-correlation
    of the match (1: identical; 0 when nothing could be matched and the shape stays put)."""

    dx: int
    dy: int
    score: float


@dataclass(frozen=True)
class Seed:
    """One shape to carry: `shape` (of the previous image), `prior` its mask moved onto the new
    image, `box` what the engine is asked about."""

    shape: Annotation
    prior: MaskPatch
    box: Box
    shift: Shift


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


def follow(previous: np.ndarray, image: np.ndarray, box: Box) -> Shift:
    """The shift that moves the content of `box` in `previous` onto `image` ((H, W, 3) uint8 RGB
    each, sizes may differ). A flat template (nothing to match) or a window too small gives no
    shift."""
    import cv2

    h0, w0 = previous.shape[:2]
    h1, w1 = image.shape[:2]
    rows, cols = box.grow(TEMPLATE_GROW).pixel_slices(w0, h0)
    if rows.stop - rows.start < 2 or cols.stop - cols.start < 2:
        return Shift(0, 0, 0.0)
    template = _gray(previous[rows, cols])
    if float(template.std()) < 1.0:
        return Shift(0, 0, 0.0)
    th, tw = template.shape
    rx = int(SEARCH_REACH * tw) + SEARCH_MIN_PX
    ry = int(SEARCH_REACH * th) + SEARCH_MIN_PX
    sx0, sy0 = max(0, cols.start - rx), max(0, rows.start - ry)
    sx1, sy1 = min(w1, cols.stop + rx), min(h1, rows.stop + ry)
    if sx1 - sx0 < tw or sy1 - sy0 < th:
        return Shift(0, 0, 0.0)
    area = _gray(image[sy0:sy1, sx0:sx1])
    scale = min(1.0, MATCH_SIDE_PX / max(th, tw))
    if scale < 1.0:
        size = (max(2, round(tw * scale)), max(2, round(th * scale)))
        template = cv2.resize(template, size, interpolation=cv2.INTER_AREA)
        area_size = (
            max(size[0], round(area.shape[1] * scale)),
            max(size[1], round(area.shape[0] * scale)),
        )
        area = cv2.resize(area, area_size, interpolation=cv2.INTER_AREA)
    result = cv2.matchTemplate(area, template, cv2.TM_CCOEFF_NORMED)
    _, score, _, (x, y) = cv2.minMaxLoc(result)
    if not np.isfinite(score):
        return Shift(0, 0, 0.0)
    dx = round(sx0 + x / scale) - cols.start
    dy = round(sy0 + y / scale) - rows.start
    return Shift(int(dx), int(dy), float(score))


def moved(patch: MaskPatch, shift: Shift, height: int, width: int) -> MaskPatch | None:
    """`patch` moved by `shift` and cut to a (height, width) image; None if nothing is left."""
    x0, y0 = patch.x + shift.dx, patch.y + shift.dy
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + patch.width, width), min(y0 + patch.height, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    inside = patch.mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return MaskPatch(inside.copy(), cx0, cy0) if inside.any() else None


def seeds(
    shapes: Sequence[Annotation], previous: np.ndarray, image: np.ndarray
) -> tuple[list[Seed], int]:
    """The shapes of `previous` (its (H, W, 3) RGB) followed onto `image`: one `Seed` per shape
    with an area, and how many were left out (no area, or moved out of the new image)."""
    h0, w0 = previous.shape[:2]
    h1, w1 = image.shape[:2]
    found: list[Seed] = []
    for shape in shapes:
        patch = shape.to_patch(h0, w0) if shape.has_area else None
        if patch is None:
            continue
        shift = follow(previous, image, patch.box())
        prior = moved(patch, shift, h1, w1)
        if prior is None:
            continue
        box = prior.box().grow(BOX_GROW).clip(w1, h1)
        found.append(Seed(shape, prior, box, shift))
    return found, len(shapes) - len(found)


def refit(proposals: Sequence[Proposal], prior: MaskPatch) -> Proposal | None:
    """The proposal that agrees best with `prior`, if it agrees at least `REFIT_AGREEMENT`."""
    best, best_iou = None, REFIT_AGREEMENT
    for proposal in proposals:
        iou = patch_iou(proposal.patch, prior)
        if iou >= best_iou:
            best, best_iou = proposal, iou
    return best
