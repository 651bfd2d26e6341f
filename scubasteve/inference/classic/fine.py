"""Candidates computed on a finer window than the shared 96 px one, for large objects.

The shared window (crop.py) maps the box's longer side to 96 working pixels whatever the object's
size, which keeps requests cheap and suits small cluttered objects, but on a large object a
working pixel covers several image pixels: thin parts vanish and colour models see a blurred
object. The fine window covers the same image region at up to `FINE_SIDE` pixels per box side
(never enlarged: small boxes use the shared window). Candidates made there keep their own
image-resolution patch; a copy resampled to the shared window lets the ranking compare them with
the rest.

`grabcut`: GrabCut (Rother et al., 2004; OpenCV's implementation: five-component colour mixtures
re-estimated from each cut, 8-neighbour contrast-sensitive smoothness) from the box, with clicks as
hard labels and outside the box as background.
`local_edit`: a corrective click changes the mask the user is correcting (`previous`) near the click
only: a graph cut whose colour models come from that mask and whose pixels pay for leaving it more
the farther they are from the click, so edges and distance stop the click's influence.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.classic import gmm, graphcut
from scubasteve.inference.classic.cache import ImageCache
from scubasteve.inference.classic.crop import Crop, build_crop
from scubasteve.inference.classic.frame import Frame

#: Longest box side (working pixels) of the fine window.
FINE_SIDE = 224
#: Below this box side (image pixels) the shared window is as fine as it needs to be.
SHARED_SIDE = 96
#: GrabCut iterations (OpenCV's example uses 5; 4 loses nothing measurable here and is cheaper).
GRABCUT_ITERATIONS = 4
#: Smoothness of the local edit's cut, per unit of contrast weight (4-neighbour edges).
EDIT_SMOOTHNESS = 25.0
#: Cost (nats) of leaving the previous mask, reached far from the click.
EDIT_STAY = 6.0
#: Reaches of the local edits, as fractions of the box's longer side: one candidate each.
EDIT_REACHES = (0.08, 0.16, 0.32, 0.64)
#: Pixels farther from the click than this many reaches keep their label in the previous mask.
EDIT_LIMIT = 3.0
#: Weight of the newest click's own colour model in its side's model.
CLICK_MODEL_WEIGHT = 0.5


def fine_crop(cache: ImageCache, box: Box, points: Sequence[PromptPoint], context: float) -> Crop:
    """The fine window of a request (same image region as the shared one)."""
    side = max(box.width, box.height)
    return build_crop(
        cache,
        box,
        points,
        box_side=round(min(max(side, SHARED_SIDE), FINE_SIDE)),
        context=context,
        geodesic=False,
    )


def grabcut(crop: Crop, init: np.ndarray | None = None) -> np.ndarray:
    """GrabCut on the window: (h, w) bool, empty when it finds no object.

    `init` (h, w) bool starts the colour models from a mask instead of the whole box.
    """
    if not crop.has_ring:
        return np.zeros(crop.shape, bool)  # no background to learn from
    labels = np.full(crop.shape, cv2.GC_BGD, np.uint8)
    if init is None:
        labels[crop.inbox] = cv2.GC_PR_FGD
    else:
        labels[crop.inbox] = cv2.GC_PR_BGD
        labels[init & crop.inbox] = cv2.GC_PR_FGD
    labels[crop.fg_seeds] = cv2.GC_FGD
    labels[crop.bg_seeds] = cv2.GC_BGD
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if not fg.any() or fg.all():
        return np.zeros(crop.shape, bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(
            np.ascontiguousarray(crop.rgb[:, :, ::-1]),
            labels,
            (0, 0, 0, 0),  # no rect: with GC_INIT_WITH_MASK OpenCV uses only the labels
            bgd,
            fgd,
            GRABCUT_ITERATIONS,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:  # a colour model without pixels
        return np.zeros(crop.shape, bool)
    found: np.ndarray = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)) & crop.inbox
    return found


def previous_in(frame: Frame, previous: MaskPatch) -> np.ndarray:
    """The mask being corrected, resampled into a window: (h, w) bool."""
    w, h = frame.image_width, frame.image_height
    window = np.zeros((h, w), np.uint8)
    x0, y0 = max(previous.x, frame.x0), max(previous.y, frame.y0)
    x1 = min(previous.x + previous.width, frame.x1)
    y1 = min(previous.y + previous.height, frame.y1)
    if x1 > x0 and y1 > y0:
        window[y0 - frame.y0 : y1 - frame.y0, x0 - frame.x0 : x1 - frame.x0] = previous.mask[
            y0 - previous.y : y1 - previous.y, x0 - previous.x : x1 - previous.x
        ]
    size = frame.size
    if (w, h) == size:
        return window.astype(bool)
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return cv2.resize(window * 255, size, interpolation=interp) > 127


def local_edits(
    crop: Crop, previous: np.ndarray, reaches: Sequence[float] = EDIT_REACHES
) -> list[tuple[float, np.ndarray]]:
    """The previous mask (h, w) bool changed around the newest click, once per reach.

    Colour models: a mixture fitted to the previous mask plus the positive clicks' seeds, and one
    to the rest of the window plus the negative seeds. Each pixel pays `EDIT_STAY` x (1 - exp(-d^2
    / 2 r^2)) for leaving the previous mask, d its distance to the click and r the reach: near the
    click colour and edges decide, far from it the previous mask stays. Clicks are hard labels.
    Beyond `EDIT_LIMIT` reaches the previous mask is a hard label: an edit never changes the
    mask far from the click.
    Returns (reach, mask) pairs, reach 0 for the smallest possible edit (the previous mask with
    the clicks' seeds imposed); masks equal to `previous` are left out.
    """
    if not crop.clicks:
        return []
    out = []
    minimal = (previous | crop.fg_seeds) & ~crop.bg_seeds
    if minimal.any() and not np.array_equal(minimal, previous):
        out.append((0.0, minimal))
    fg_sel = (previous & crop.inbox) | crop.fg_seeds
    bg_sel = ~previous | crop.bg_seeds
    if not fg_sel.any() or not bg_sel.any():
        return out
    lab = crop.lab.reshape(-1, 3)
    fg_ll = gmm.fit(lab[fg_sel.ravel()]).loglik(lab)
    bg_ll = gmm.fit(lab[bg_sel.ravel()]).loglik(lab)
    # The newest click's own colours: what the user points at is often what the mask's models
    # explain worst (that is why it was missed), so they join its side's model at equal weight.
    x, y, positive = crop.clicks[-1]
    seeds = crop.fg_seeds if positive else crop.bg_seeds
    if seeds.any() and CLICK_MODEL_WEIGHT > 0:
        own = gmm.fit(lab[seeds.ravel()], components=2).loglik(lab)
        share = CLICK_MODEL_WEIGHT
        if positive:
            fg_ll = np.logaddexp(np.log1p(-share) + fg_ll, np.log(share) + own)
        else:
            bg_ll = np.logaddexp(np.log1p(-share) + bg_ll, np.log(share) + own)
    colour = (bg_ll - fg_ll).reshape(crop.shape)
    # colour > 0: the background model explains the pixel better.
    h, w = crop.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    d2 = (xs - x) ** 2 + (ys - y) ** 2
    side = max(crop.frame.box.width, crop.frame.box.height, 1.0)
    base_fg = np.maximum(colour, 0.0)
    base_bg = np.maximum(-colour, 0.0)
    for reach in reaches:
        r = reach * side
        stay = EDIT_STAY * (1.0 - np.exp(-d2 / (2 * r * r)))
        cost_fg = base_fg + stay * ~previous
        cost_bg = base_bg + stay * previous
        far = d2 > (EDIT_LIMIT * r) ** 2  # beyond the reach the previous mask is kept as it is
        cost_fg[far & ~previous] = graphcut.HARD
        cost_bg[far & previous] = graphcut.HARD
        mask = graphcut.cut(
            crop, cost_fg.astype(np.float32), cost_bg.astype(np.float32), EDIT_SMOOTHNESS
        )
        if mask.any() and not np.array_equal(mask, previous):
            out.append((reach, mask))
    return out


def to_shared(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A fine-window mask resampled to the shared window's working size (w, h): (h, w) bool."""
    if (mask.shape[1], mask.shape[0]) == size:
        return np.array(mask, dtype=bool)
    resized = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
    return np.asarray(resized, dtype=np.uint8) > 127


def apply_edit(
    previous: MaskPatch,
    frame: Frame,
    before: np.ndarray,
    after: np.ndarray,
    guide: np.ndarray | None,
) -> MaskPatch:
    """The image-resolution mask `previous` with only the region an edit changed replaced.

    `before`/`after` are the window's masks (h, w) bool before and after the edit. Pixels of the
    image outside the changed region (grown by one working pixel) keep `previous` exactly, so
    resampling never moves the outline away from the click.
    """
    changed = cv2.dilate((before ^ after).astype(np.uint8), np.ones((3, 3), np.uint8))
    cx, cy, cw, ch = cv2.boundingRect(changed)
    if cw == 0 or ch == 0:
        return previous
    # Resample only around the change (2 working pixels more, for the bilinear blur and the
    # guided filter): a click on a huge object must not cost the whole object's resampling.
    h, w = after.shape
    m0, n0 = max(0, cy - 2), max(0, cx - 2)
    m1, n1 = min(h, cy + ch + 2), min(w, cx + cw + 2)
    local = np.zeros_like(after)
    local[m0:m1, n0:n1] = after[m0:m1, n0:n1]
    edited = frame.to_patch(local, guide=guide)
    # The changed region's bounds in image pixels (within the window).
    x0 = frame.x0 + int(np.floor(cx / frame.scale_x))
    y0 = frame.y0 + int(np.floor(cy / frame.scale_y))
    x1 = min(frame.x1, frame.x0 + int(np.ceil((cx + cw) / frame.scale_x)))
    y1 = min(frame.y1, frame.y0 + int(np.ceil((cy + ch) / frame.scale_y)))
    region = (
        cv2.resize(
            changed[cy : cy + ch, cx : cx + cw] * 255,
            (x1 - x0, y1 - y0),
            interpolation=cv2.INTER_LINEAR,
        )
        > 0
    )
    ox0, oy0 = min(previous.x, x0), min(previous.y, y0)
    ox1 = max(previous.x + previous.width, x1)
    oy1 = max(previous.y + previous.height, y1)
    out = np.zeros((oy1 - oy0, ox1 - ox0), bool)
    _paste(out, previous, ox0, oy0)
    new = np.zeros((y1 - y0, x1 - x0), bool)
    _paste(new, edited, x0, y0)
    sub = out[y0 - oy0 : y1 - oy0, x0 - ox0 : x1 - ox0]
    sub[region] = new[region]
    bx, by, bw, bh = cv2.boundingRect(out.astype(np.uint8))
    if bw == 0 or bh == 0:
        return MaskPatch(np.zeros((1, 1), bool), x0, y0)
    return MaskPatch(out[by : by + bh, bx : bx + bw].copy(), ox0 + bx, oy0 + by)


def _paste(target: np.ndarray, patch: MaskPatch, x0: int, y0: int) -> None:
    """OR a patch into `target`, whose top-left pixel is image pixel (x0, y0) (clipped)."""
    h, w = target.shape
    tx0, ty0 = max(patch.x - x0, 0), max(patch.y - y0, 0)
    tx1 = min(patch.x - x0 + patch.width, w)
    ty1 = min(patch.y - y0 + patch.height, h)
    if tx1 > tx0 and ty1 > ty0:
        target[ty0:ty1, tx0:tx1] |= patch.mask[
            ty0 - (patch.y - y0) : ty1 - (patch.y - y0), tx0 - (patch.x - x0) : tx1 - (patch.x - x0)
        ]
