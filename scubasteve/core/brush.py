"""Brush and eraser strokes applied to an annotation's polygons.

The stroke (the pixels the brush went over) is outlined and simplified with the polygon tolerance,
then added to or cut from the annotation's polygons as geometry. The parts of the outline the stroke
did not touch keep their vertices: an 18-point polygon touched up with the brush stays a polygon of
a few dozen points, instead of becoming the pixel staircase of its rasterised mask (hundreds).
"""

from __future__ import annotations

import numpy as np
import shapely

from scubasteve.core.geometry import Polygon, mask_to_polygons, polygons_to_shapely
from scubasteve.core.shape_ops import parts_of


def apply_stroke(
    polygons: tuple[Polygon, ...] | list[Polygon],
    stroke: np.ndarray,
    offset: tuple[float, float],
    tolerance: float,
    erase: bool = False,
    min_island: float = 0.0,
) -> tuple[Polygon, ...]:
    """The annotation's polygons with `stroke` (a 2-D mask placed at `offset` = (x, y)) added or cut.

    Returns the parts, largest first; parts (and holes) smaller than `min_island` square pixels go,
    except the largest part. Empty when the eraser removed everything.
    """
    outline = mask_to_polygons(np.asarray(stroke, dtype=bool), min(tolerance, 1.0), offset=offset)
    if not outline:
        return tuple(polygons)
    brush = shapely.simplify(
        polygons_to_shapely(outline), max(tolerance, 0.5), preserve_topology=True
    )
    old = polygons_to_shapely(polygons)
    return parts_of(old.difference(brush) if erase else old.union(brush), min_island)
