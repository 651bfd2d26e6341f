"""Boxes, polygons with holes, and exact conversion between masks and polygons.

Coordinate convention (see docs/adr/0002-pixel-edge-polygons.md): x to the right, y down, and pixel
``(row r, column c)`` covers the unit square ``[c, c+1] x [r, r+1]``. Integer coordinates are pixel
corners. This is how Qt draws an image placed at the scene origin (and so how labelme displays shapes),
and how pycocotools rasterises polygons: a pixel belongs to a polygon when its centre is inside it.

Masks become polygons by tracing the outline of the pixels (pixel edges, not pixel centres), so the
polygon's area equals the pixel count, a one-pixel-wide line is a valid polygon, and rasterising the
polygon gives back exactly the mask. Simplification then removes vertices while every pixel centre
stays on its side of the outline for tolerances up to 1 px (see `DEFAULT_TOLERANCE`, core/simplify.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.polygon import orient

from scubasteve.core.clipping import MAX_MASK_PIXELS, raster_rings
from scubasteve.core.simplify import simplify_pixel_ring

#: Default simplification tolerance in pixels: how far the simplified outline may stray from the exact
#: pixel-edge outline. Up to 1 px the simplification also keeps every pixel centre on its side, so the
#: round trip mask -> polygon -> mask stays exact; above 1 px it is plain Douglas-Peucker.
DEFAULT_TOLERANCE = 1.0

#: Polygons smaller than this (in square pixels) after simplification are dropped as degenerate.
MIN_POLYGON_AREA = 0.5


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image coordinates, XYXY, with ``x0 <= x1`` and ``y0 <= y1``."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"box coordinates must be finite numbers, got {values}")
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"box must have x0 <= x1 and y0 <= y1, got {values}")

    @classmethod
    def from_points(cls, xa: float, ya: float, xb: float, yb: float) -> Box:
        """A box from two opposite corners in any order (as a mouse drag gives them)."""
        return cls(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        return cls(x, y, x + w, y + h)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.width, self.height)

    def grow(self, fraction: float) -> Box:
        """The box grown by `fraction` of its width/height on each side (negative shrinks)."""
        dx, dy = self.width * fraction, self.height * fraction
        return Box.from_points(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)

    def clip(self, width: int, height: int) -> Box:
        """The box limited to an image of the given size."""

        def c(v: float, hi: int) -> float:
            return min(max(v, 0.0), float(hi))

        return Box(c(self.x0, width), c(self.y0, height), c(self.x1, width), c(self.y1, height))

    def pixel_slices(self, width: int, height: int) -> tuple[slice, slice]:
        """Row and column slices of the pixels whose centres lie inside the (clipped) box."""
        b = self.clip(width, height)
        c0, c1 = math.floor(b.x0 + 0.5), math.floor(b.x1 + 0.5)
        r0, r1 = math.floor(b.y0 + 0.5), math.floor(b.y1 + 0.5)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def _as_ring(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    try:
        arr = np.asarray(points, dtype=np.float64)
    except OverflowError as exc:
        raise ValueError("a ring has a coordinate beyond the float range") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a ring must be an (N, 2) array of x, y points, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("a ring has a NaN or infinite coordinate")
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]  # store rings open; shapely closes them
    return arr


@dataclass(frozen=True, eq=False)
class Polygon:
    """One polygon with optional holes.

    `exterior`: (N, 2) float64 array of x, y vertices, not repeating the first point.
    `holes`: (M_i, 2) arrays, one per hole.
    """

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "exterior", _as_ring(self.exterior))
        object.__setattr__(self, "holes", tuple(_as_ring(h) for h in self.holes))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Polygon):
            return NotImplemented
        return (
            np.array_equal(self.exterior, other.exterior)
            and len(self.holes) == len(other.holes)
            and all(np.array_equal(a, b) for a, b in zip(self.holes, other.holes, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def to_shapely(self) -> ShapelyPolygon:
        return ShapelyPolygon(self.exterior, list(self.holes))

    @classmethod
    def from_shapely(cls, poly: ShapelyPolygon) -> Polygon:
        return cls(
            np.asarray(poly.exterior.coords)[:-1],
            tuple(np.asarray(r.coords)[:-1] for r in poly.interiors),
        )

    @property
    def area(self) -> float:
        return float(self.to_shapely().area)

    def bounds(self) -> Box:
        xs, ys = self.exterior[:, 0], self.exterior[:, 1]
        return Box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    def translated(self, dx: float, dy: float) -> Polygon:
        offset = np.array([dx, dy])
        return Polygon(self.exterior + offset, tuple(h + offset for h in self.holes))

    def scaled(self, sx: float, sy: float) -> Polygon:
        s = np.array([sx, sy])
        return Polygon(self.exterior * s, tuple(h * s for h in self.holes))


def polygons_to_shapely(polygons: Iterable[Polygon]) -> MultiPolygon:
    """The polygons as one shapely MultiPolygon (for geometry operations such as brush strokes)."""
    return MultiPolygon([p.to_shapely() for p in polygons])


def polygons_bounds(polygons: Sequence[Polygon]) -> Box:
    """The bounding box of a non-empty set of polygons."""
    if not polygons:
        raise ValueError("no polygons")
    boxes = [p.bounds() for p in polygons]
    return Box(
        min(b.x0 for b in boxes),
        min(b.y0 for b in boxes),
        max(b.x1 for b in boxes),
        max(b.y1 for b in boxes),
    )


# --- mask -> polygons ------------------------------------------------------------------------------


def _pixel_outline(mask: np.ndarray) -> shapely.Geometry:
    """The exact pixel-edge outline of a boolean mask as a (Multi)Polygon.

    Each horizontal run of set pixels becomes a rectangle; runs with the same extent in consecutive
    rows are merged first, then shapely unions the rectangles. The result is valid by construction and
    its area equals the number of set pixels.
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    h, w = m.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    diff = np.diff(padded, axis=1)
    rows, starts = np.nonzero(diff == 1)
    _, ends = np.nonzero(diff == -1)
    if rows.size == 0:
        return ShapelyPolygon()
    # Merge vertically: a run continues a rectangle when the previous row had the same run.
    order = np.lexsort((rows, ends, starts))
    rows, starts, ends = rows[order], starts[order], ends[order]
    new_rect = np.ones(rows.size, dtype=bool)
    new_rect[1:] = (
        (starts[1:] != starts[:-1]) | (ends[1:] != ends[:-1]) | (rows[1:] != rows[:-1] + 1)
    )
    group = np.cumsum(new_rect) - 1
    top = rows[new_rect]
    bottom = np.zeros(top.size, dtype=np.int64)
    np.maximum.at(bottom, group, rows + 1)
    rects = shapely.box(starts[new_rect], top, ends[new_rect], bottom)
    return shapely.union_all(rects)


def _iter_polygons(geom: shapely.Geometry) -> Iterable[ShapelyPolygon]:
    if geom.is_empty:
        return
    if isinstance(geom, ShapelyPolygon):
        yield geom
    elif hasattr(geom, "geoms"):
        for g in geom.geoms:
            yield from _iter_polygons(g)


def mask_to_polygons(
    mask: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE,
    offset: tuple[float, float] = (0.0, 0.0),
    min_area: float = MIN_POLYGON_AREA,
    min_island: float = 0.0,
) -> list[Polygon]:
    """Polygons (with holes) outlining the set pixels of `mask`.

    `mask`: (H, W) array, non-zero = inside. `tolerance`: how far (pixels) the outline may stray from
    the exact pixel-edge outline; up to 1 no pixel changes side, 0 keeps every staircase corner. `offset`: (x, y) added to every
    vertex, for masks that cover only part of an image. Returns valid polygons, largest first, none
    self-intersecting or smaller than `min_area`. `min_island` (square pixels): parts of the mask
    smaller than this are dropped (except the largest) and holes smaller than this are filled, so
    specks and pinholes do not become shapes of their own.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    outline = _pixel_outline(mask)
    if outline.is_empty:
        return []
    if min_island > 0:
        outline = _drop_specks(outline, min_island)
    if tolerance > 1.0:
        # Coarser than a pixel: plain Douglas-Peucker; pixels along the outline may change side.
        outline = shapely.simplify(outline, tolerance, preserve_topology=True)
        if not outline.is_valid:
            outline = shapely.make_valid(outline)
        shapes = list(_iter_polygons(outline))
    else:
        shapes = [_simplify_exact(orient(p), tolerance) for p in _iter_polygons(outline)]
    polys = [p for p in shapes if p.area >= min_area]
    polys.sort(key=lambda p: p.area, reverse=True)
    result = [Polygon.from_shapely(orient(p)) for p in polys]
    if offset != (0.0, 0.0):
        result = [p.translated(*offset) for p in result]
    return result


def _drop_specks(outline: shapely.Geometry, min_area: float) -> shapely.Geometry:
    """`outline` without parts (but the largest) or holes smaller than `min_area`."""
    parts = sorted(_iter_polygons(outline), key=lambda p: p.area, reverse=True)
    kept = [
        ShapelyPolygon(p.exterior, [r for r in p.interiors if ShapelyPolygon(r).area >= min_area])
        for i, p in enumerate(parts)
        if i == 0 or p.area >= min_area
    ]
    return kept[0] if len(kept) == 1 else MultiPolygon(kept)


def _simplify_exact(poly: ShapelyPolygon, tolerance: float) -> ShapelyPolygon:
    """Simplify a pixel-outline polygon keeping every pixel on its side (see core/simplify.py).

    The result is checked (valid, same pixels); if the check fails the polygon is simplified by plain
    Douglas-Peucker within half a pixel instead, checked the same way, and if that fails too only
    collinear corner points are dropped, so the round trip mask -> polygons -> mask is exact.
    """
    if tolerance <= 0:
        return shapely.simplify(poly, 0.0)  # drop collinear corner points only
    rings = [
        np.asarray(poly.exterior.coords)[:-1],
        *(np.asarray(r.coords)[:-1] for r in poly.interiors),
    ]
    simple = [simplify_pixel_ring(r, tolerance) for r in rings]
    candidate = ShapelyPolygon(simple[0], simple[1:])
    if candidate.is_valid and _same_pixels(poly, candidate):
        return candidate
    fallback = shapely.simplify(poly, min(tolerance, 0.5), preserve_topology=True)
    if fallback.is_valid and _same_pixels(poly, fallback):
        return fallback
    return shapely.simplify(poly, 0.0)  # collinear corner points only: exact by construction


def _same_pixels(a: ShapelyPolygon, b: ShapelyPolygon) -> bool:
    x0, y0, x1, y1 = (math.floor(v) for v in a.union(b).bounds)
    h, w = y1 - y0 + 2, x1 - x0 + 2
    pa = Polygon.from_shapely(a).translated(-x0, -y0)
    pb = Polygon.from_shapely(b).translated(-x0, -y0)
    return bool(np.array_equal(polygons_to_mask([pa], h, w), polygons_to_mask([pb], h, w)))


# --- polygons -> mask ------------------------------------------------------------------------------


def _rasterize_rings(rings: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    segs = [r.ravel().tolist() for r in raster_rings(rings, height, width)]
    if not segs:
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects(segs, height, width)
    return np.asarray(mask_utils.decode(mask_utils.merge(rles)), dtype=bool)


def polygons_to_mask(polygons: Sequence[Polygon], height: int, width: int) -> np.ndarray:
    """Rasterise polygons into an (height, width) bool mask: a pixel is set when its centre is inside.

    Each polygon is its exterior minus its own holes; polygons are then united (so an island inside
    another polygon's hole stays). Rasterisation is pycocotools' own, so masks agree with what COCO
    tools compute. Vertices far outside the image are clipped first (no pixel changes); a NaN or
    infinite vertex, or a shape beyond the work bounds (`raster_rings`), raises `InputError`.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    if height * width > MAX_MASK_PIXELS:
        raise ValueError(f"mask size {width}x{height} is above {MAX_MASK_PIXELS:,} pixels")
    plain = [p.exterior for p in polygons if not p.holes]
    mask = _rasterize_rings(plain, height, width)
    for p in polygons:
        if p.holes:
            mask |= _rasterize_rings([p.exterior], height, width) & ~_rasterize_rings(
                list(p.holes), height, width
            )
    return mask


# --- masks -------------------------------------------------------------------------------------------


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two same-shaped boolean masks (1.0 when both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def mask_bbox(mask: np.ndarray) -> Box | None:
    """The pixel-edge bounding box of the set pixels, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
