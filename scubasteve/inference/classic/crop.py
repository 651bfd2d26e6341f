"""The working data of one request: the window's pixels and the cues every generator shares.

All arrays are at working resolution, (h, w) for the window `frame.size == (w, h)`:
`rgb` (h, w, 3) uint8, `lab` (h, w, 3) float32 CIE Lab (OpenCV's 8-bit scaling), `bins` (h, w)
int32 colour-histogram bin of each pixel, `inbox` (h, w) bool, `u`/`v` (h, w) float32 coordinates
normalised to the box (-1 and +1 on its sides), `w_right`/`w_down` (h, w) float32 contrast weights
of the edges to the right and lower neighbours (0 on the last column/row), `grad` (h, w) float32
colour gradient magnitude, `geodesic` (h, w) float32 distance from the ring outside the box
along paths that pay for crossing edges (in half the box's shorter side), and `fg_seeds` /
`bg_seeds` (h, w) bool from corrective clicks, and `clicks` the clicks as (x, y, positive) in
working coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.classic import gridsolve, offload
from scubasteve.inference.classic.cache import ImageCache
from scubasteve.inference.classic.changes import ChangeGrid
from scubasteve.inference.classic.frame import Frame

#: Colour histogram bins per Lab channel (16**3 bins in all).
BINS_PER_CHANNEL = 16
#: Radius of a corrective click's seed disc, as a fraction of the box's longer working side.
SEED_RADIUS = 0.04


@dataclass(eq=False)
class Crop:
    frame: Frame
    rgb: np.ndarray
    lab: np.ndarray
    bins: np.ndarray
    inbox: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w_right: np.ndarray
    w_down: np.ndarray
    grad: np.ndarray
    geodesic: np.ndarray
    fg_seeds: np.ndarray
    bg_seeds: np.ndarray
    clicks: tuple[tuple[float, float, bool], ...] = ()
    #: The full image (H, W, 3) uint8, for outlines at image resolution (None: plain upsampling).
    guide: np.ndarray | None = None
    #: What proposals change in the mask a click request corrects (None for a fresh box).
    changes: ChangeGrid | None = None
    #: Image-resolution patches of this request's candidate masks, by id of the mask array.
    patches: dict[int, MaskPatch] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.inbox.shape

    @property
    def has_ring(self) -> bool:
        """Whether any working pixel lies outside the box (false for whole-image boxes)."""
        return not bool(self.inbox.all())


def build_crop(
    cache: ImageCache,
    box: Box,
    points: Sequence[PromptPoint] = (),
    *,
    box_side: int = 96,
    context: float = 0.25,
    geodesic: bool = True,
) -> Crop:
    """Cut the working window around `box` (clipped to the image) and compute the shared cues.

    `geodesic=False` leaves the geodesic distance at zero (for windows that do not use it).
    """
    frame = Frame.around(box, cache.width, cache.height, box_side=box_side, context=context)
    level, level_scale = cache.level_for(max(frame.scale_x, frame.scale_y))
    rgb = frame.cut(level, level_scale)
    if rgb.ndim == 2:  # warpAffine drops a channel axis of size one; keep (h, w, 3)
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    lab8 = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB), dtype=np.uint8)
    lab = lab8.astype(np.float32)
    shift = 8 - int(np.log2(BINS_PER_CHANNEL))
    q = (lab8 >> shift).astype(np.int32)
    bins = (q[..., 0] * BINS_PER_CHANNEL + q[..., 1]) * BINS_PER_CHANNEL + q[..., 2]

    h, w = bins.shape
    b = frame.box
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    u = (xs - (b.x0 + b.x1) / 2) / max(b.width / 2, 1e-3)
    v = (ys - (b.y0 + b.y1) / 2) / max(b.height / 2, 1e-3)

    # Contrast-sensitive edge weights as in GrabCut: exp(-beta * |dLab|^2) with beta from the mean.
    smooth = cv2.GaussianBlur(lab, (3, 3), 0) if min(h, w) >= 3 else lab
    dr = np.sum((smooth[:, 1:] - smooth[:, :-1]) ** 2, axis=2)
    dd = np.sum((smooth[1:, :] - smooth[:-1, :]) ** 2, axis=2)
    mean_sq = (dr.sum() + dd.sum()) / max(1, dr.size + dd.size)
    beta = 1.0 / (2.0 * mean_sq + 1e-6)
    w_right = np.zeros((h, w), np.float32)
    w_down = np.zeros((h, w), np.float32)
    w_right[:, :-1] = np.exp(-beta * dr)
    w_down[:-1, :] = np.exp(-beta * dd)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(np.sum(gx * gx + gy * gy, axis=2))

    geo = (
        _geodesic_from_ring(grad, frame.box_mask(), min(b.width, b.height))
        if geodesic
        else np.zeros((h, w), np.float32)
    )

    fg_seeds = np.zeros((h, w), bool)
    bg_seeds = np.zeros((h, w), bool)
    radius = max(1, round(SEED_RADIUS * max(b.width, b.height)))
    clicks = []
    for p in points:
        px, py = frame.to_working(p.x, p.y)
        clicks.append((px, py, p.positive))
        target = fg_seeds if p.positive else bg_seeds
        disc = np.zeros((h, w), np.uint8)
        cv2.circle(disc, (int(px), int(py)), radius, 1, -1)
        target |= disc.astype(bool)
    fg_seeds &= ~bg_seeds  # where clicks of both kinds overlap, the negative one wins
    return Crop(
        frame,
        rgb,
        lab,
        bins,
        frame.box_mask(),
        u,
        v,
        w_right,
        w_down,
        grad,
        geo,
        fg_seeds,
        bg_seeds,
        tuple(clicks),
        cache.image,
    )


def _geodesic_from_ring(grad: np.ndarray, inbox: np.ndarray, box_short_side: float) -> np.ndarray:
    """Minimum path cost from the ring to each pixel, where a step costs 0.2 + its edge strength.

    Background tends to reach into the box without crossing a strong edge; the object does not.
    With no ring (a whole-image box) the window's border stands in for it.
    """
    h, w = grad.shape
    # Edge strength relative to the window's mean (floored: flat synthetic scenes have none).
    cost = grad / max(float(grad.mean()), 1.0) + 0.2
    starts = ~inbox
    if not starts.any():
        starts = np.zeros((h, w), bool)
        starts[[0, -1], :] = True
        starts[:, [0, -1]] = True
    # Every start pixel costs (almost) nothing to cross, so one start per connected part of the
    # ring acts as a source on all of it; passing thousands of starts is slow in scikit-image.
    cost[starts] = 1e-6
    n, labels = cv2.connectedComponents(starts.astype(np.uint8), connectivity=8)
    seeds = [np.argwhere(labels == i)[0] for i in range(1, n)]
    # scikit-image holds the GIL throughout: in the helper process the GUI thread never waits.
    distance = offload.call(gridsolve.min_cost_paths, cost.astype(np.float64), seeds)
    return (distance / (0.5 * box_short_side + 1e-3)).astype(np.float32)
