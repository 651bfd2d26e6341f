"""Rasterising bounds: clip far-out rings exactly and refuse shapes beyond the work bounds.

pycocotools' polygon rasteriser walks every edge at 5x resolution, so a vertex at 1e8 costs
gigabytes and beyond about 4e8 overflows its integers and crashes the process. Rings that leave the
image by more than its own size are therefore clipped to the image grown by one pixel first (no
pixel centre changes side), and the outline that remains is bounded. The bounds are stated in
docs/hostile-inputs.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scubasteve.core.errors import InputError

#: Work bounds per shape (docs/hostile-inputs.md). At most this many vertices in one shape (all its
#: rings): shapely's validity check of a self-intersecting ring costs about 1 s per 100,000 vertices.
MAX_SHAPE_VERTICES = 100_000
#: At most this long an outline (pixels, max(|dx|, |dy|) summed over the edges after clipping to the
#: image) is rasterised: pycocotools needs about 50 bytes and 0.2 microseconds per pixel of outline.
MAX_OUTLINE_PIXELS = 2_000_000
#: Largest mask (height x width) made in memory; the same bound as images (io/images.py).
MAX_MASK_PIXELS = 1 << 30


def extent_problem(points: np.ndarray, width: int, height: int) -> str | None:
    """Why `points` cannot belong to a (width x height) image, or None when they can.

    A point more than one image size beyond the image's edges is not a shape slightly off the edge
    but broken data (a unit mix-up, a corrupt number); readers refuse such shapes before anything
    is rasterised (docs/hostile-inputs.md).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.size == 0:
        return None
    xs, ys = pts[:, 0], pts[:, 1]
    x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    if x0 >= -width and x1 <= 2 * width and y0 >= -height and y1 <= 2 * height:
        return None
    return (
        f"coordinates reach far outside the {width}x{height} image (x {x0:.4g}..{x1:.4g}, "
        f"y {y0:.4g}..{y1:.4g}); at most one image size beyond each edge is accepted "
        f"(x {-width}..{2 * width}, y {-height}..{2 * height})"
    )


def clip_ring(ring: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The ring clipped to the rectangle [x0, x1] x [y0, y1] (Sutherland-Hodgman, vectorised).

    Works for any ring, self-intersecting ones included: for every point strictly inside the
    rectangle the winding number is unchanged, so the even-odd (and nonzero) fill inside it is too.
    The result may have edges running along the rectangle's sides; fewer than 3 points means empty.
    """
    pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    # Work in units where every value is at most about 1, so that differences cannot overflow.
    top = max(float(np.abs(pts).max(initial=0.0)), abs(x0), abs(y0), abs(x1), abs(y1), 1.0)
    e = math.frexp(top)[1]  # scale by 2**-e: exact, and no value above 1 remains
    pts = np.ldexp(pts, -e)
    rect = (
        (0, math.ldexp(x0, -e), False),
        (0, math.ldexp(x1, -e), True),
        (1, math.ldexp(y0, -e), False),
        (1, math.ldexp(y1, -e), True),
    )
    for axis, bound, keep_below in rect:
        if len(pts) == 0:
            break
        nxt = np.roll(pts, -1, axis=0)
        a, b = pts[:, axis] - bound, nxt[:, axis] - bound
        inside = a <= 0 if keep_below else a >= 0
        crossing = inside != (b <= 0 if keep_below else b >= 0)
        t = np.zeros(len(pts))
        t[crossing] = a[crossing] / (a[crossing] - b[crossing])
        cut = pts + t[:, None] * (nxt - pts)
        cut[:, axis] = bound
        both = np.stack([pts, cut], axis=1).reshape(-1, 2)
        pts = both[np.stack([inside, crossing], axis=1).reshape(-1)]
    return np.ldexp(pts, e)


def outline_pixels(rings: Sequence[np.ndarray]) -> float:
    """The rasterising cost of rings: max(|dx|, |dy|) summed over all edges, in pixels."""
    total = 0.0
    for ring in rings:
        if len(ring) > 1:
            d = np.abs(np.diff(np.vstack([ring, ring[:1]]), axis=0))
            total += float(np.maximum(d[:, 0], d[:, 1]).sum())
    return total


def raster_rings(rings: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """Rings ready for pycocotools on a (height, width) image: finite, far-out parts clipped, and
    within the work bounds (`MAX_SHAPE_VERTICES`, `MAX_OUTLINE_PIXELS`); else `InputError`.

    Rings that stay within one image size of the image are passed unchanged (pycocotools' own
    result); others are clipped to the image grown by one pixel, which changes no pixel centre.
    """
    rings = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings]
    vertices = sum(len(r) for r in rings)
    if vertices > MAX_SHAPE_VERTICES:
        raise InputError(
            f"the shape has {vertices:,} vertices; at most {MAX_SHAPE_VERTICES:,} are rasterised"
        )
    if not all(np.isfinite(r).all() for r in rings):
        raise InputError("a polygon has a NaN or infinite vertex")
    margin = float(max(height, width))
    out: list[np.ndarray] = []
    for r in rings:
        if len(r) < 3:
            continue
        lo, hi = r.min(axis=0), r.max(axis=0)
        if lo[0] < -margin or lo[1] < -margin or hi[0] > width + margin or hi[1] > height + margin:
            r = clip_ring(r, -1.0, -1.0, width + 1.0, height + 1.0)
            if len(r) < 3:
                continue
        out.append(r)
    length = outline_pixels(out)
    if length > MAX_OUTLINE_PIXELS:
        raise InputError(
            f"the shape's outline is {length:,.0f} pixels long inside the image; at most "
            f"{MAX_OUTLINE_PIXELS:,} are rasterised"
        )
    return out
