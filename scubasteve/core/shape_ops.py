"""Operations on whole shapes: merge, subtract, and tracing a shape's outline again more or less
closely. Geometry in, geometry out (pixel-edge polygons, ADR 0002); the GUI makes them undoable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry.polygon import orient

from scubasteve.core.geometry import (
    MIN_POLYGON_AREA,
    Polygon,
    mask_to_polygons,
    polygons_bounds,
    polygons_to_mask,
    polygons_to_shapely,
)

#: Outline tolerances (px) the simpler / finer keys step through: 0 is the exact pixel outline; up
#: to 1 px every pixel centre stays on its side (the shape's pixels do not change).
TOLERANCES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


def parts_of(geometry: shapely.Geometry, min_island: float = 0.0) -> tuple[Polygon, ...]:
    """The polygons of a shapely result, largest first; parts and holes smaller than `min_island`
    square pixels go, except the largest part. Empty when nothing is left."""
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type == "Polygon"]
    parts = [p for p in parts if not p.is_empty and p.area >= MIN_POLYGON_AREA]
    parts.sort(key=lambda p: p.area, reverse=True)
    if min_island > 0 and parts:
        parts = parts[:1] + [p for p in parts[1:] if p.area >= min_island]
        parts = [
            shapely.Polygon(
                p.exterior, [r for r in p.interiors if shapely.Polygon(r).area >= min_island]
            )
            for p in parts
        ]
    return tuple(Polygon.from_shapely(orient(p)) for p in parts)


def merge(shapes: Sequence[Sequence[Polygon]], min_island: float = 0.0) -> tuple[Polygon, ...]:
    """One shape covering all of `shapes` (each a sequence of polygons with holes)."""
    return parts_of(shapely.union_all([polygons_to_shapely(s) for s in shapes]), min_island)


def subtract(
    shape: Sequence[Polygon], cutters: Sequence[Sequence[Polygon]], min_island: float = 0.0
) -> tuple[Polygon, ...]:
    """`shape` without what any of `cutters` covers; empty when nothing is left."""
    cut = shapely.union_all([polygons_to_shapely(c) for c in cutters])
    return parts_of(polygons_to_shapely(shape).difference(cut), min_island)


def point_count(polygons: Sequence[Polygon]) -> int:
    """Vertices of all rings (what labelme stores and a person edits)."""
    return sum(len(p.exterior) + sum(len(h) for h in p.holes) for p in polygons)


def shape_pixels(polygons: Sequence[Polygon]) -> tuple[int, int, np.ndarray]:
    """(x0, y0, mask): the shape's pixels in its bounding window, mask (h, w) bool."""
    box = polygons_bounds(polygons)
    x0, y0 = math.floor(box.x0), math.floor(box.y0)
    w, h = max(1, math.ceil(box.x1) - x0), max(1, math.ceil(box.y1) - y0)
    shifted = [p.translated(-x0, -y0) for p in polygons]
    return x0, y0, polygons_to_mask(shifted, h, w)


def retrace(
    pixels: tuple[int, int, np.ndarray], tolerance: float, min_island: float = 0.0
) -> tuple[Polygon, ...]:
    """The outline of `pixels` (from `shape_pixels`) simplified with `tolerance` px."""
    x0, y0, mask = pixels
    return tuple(
        mask_to_polygons(mask, tolerance, offset=(float(x0), float(y0)), min_island=min_island)
    )


def nearest_step(tolerance: float) -> int:
    """Index in TOLERANCES closest to `tolerance` (the one a shape was probably traced with)."""
    return min(range(len(TOLERANCES)), key=lambda i: abs(TOLERANCES[i] - tolerance))
