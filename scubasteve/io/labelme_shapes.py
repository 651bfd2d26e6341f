"""LabelMe shape dicts -> `Annotation`s: strict checks with messages that name the problem.

Rectangles and circles become polygons for training but keep the points they were drawn with; `mask`
shapes keep their exact mask; polygon shapes sharing a label and `group_id` are joined into one
annotation, nested rings becoming holes (docs/adr/0003-holes-and-metadata-in-labelme.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from scubasteve.core.annotation import SHAPE_TYPES, Annotation, MaskPatch
from scubasteve.core.clipping import MAX_SHAPE_VERTICES, extent_problem, raster_rings
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.files import text_problem
from scubasteve.core.geometry import Box, Polygon
from scubasteve.core.labels import normalise_label
from scubasteve.io import images
from scubasteve.io.json_files import json_safe, object_at

META_KEY = "scubasteve"
SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask", META_KEY}
CIRCLE_VERTICES = 64
#: Groups of more rings than this are not nested into holes (the nesting test is quadratic).
MAX_GROUP_RINGS = 1000


class ShapeError(Exception):
    """A shape that cannot be used; the raw dict is kept and written back unchanged."""


def read_label(raw: Any, problems: list[Problem], path: Path, where: str) -> str:
    """A label from a file, normalised (`normalise_label`), with a warning when that changed it.

    `ShapeError` when it is not a string or nothing visible is left.
    """
    label = normalise_label(raw) if isinstance(raw, str) else ""
    if not label:
        raise ShapeError(f"'label' must be a non-empty string, got {raw!a}")
    problem = text_problem(label)
    if problem:
        raise ShapeError(f"the label cannot be used: {problem}")
    if label != raw:
        problems.append(
            Problem(
                f"label {raw!a} is read as {label!r} (labels that look alike are one label: "
                "Unicode form, invisible characters and spaces normalised; saved that way)",
                path,
                where,
                "warning",
            )
        )
    return label


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _points(raw: Any) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise ShapeError("'points' must be a non-empty list of [x, y] pairs")
    if len(raw) > MAX_SHAPE_VERTICES:
        raise ShapeError(
            f"the shape has {len(raw):,} points; at most {MAX_SHAPE_VERTICES:,} per shape are read"
        )
    for point in raw:
        if not (
            isinstance(point, list)
            and len(point) == 2
            and _is_number(point[0])
            and _is_number(point[1])
        ):
            shown = repr(point) if len(repr(point)) < 40 else repr(point)[:37] + "..."
            raise ShapeError(f"'points' must contain only [x, y] number pairs, got {shown}")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except OverflowError as exc:
        raise ShapeError("'points' contain a number beyond the floating-point range") from exc
    if not np.isfinite(arr).all():
        raise ShapeError("'points' contain NaN or infinite coordinates")
    return arr


def check_extent(points: np.ndarray, width: int, height: int) -> None:
    """`ShapeError` when a point lies more than one image size beyond the image (`extent_problem`)."""
    problem = extent_problem(points, width, height)
    if problem:
        raise ShapeError(problem)


def check_cost(polygons: tuple[Polygon, ...], width: int, height: int) -> None:
    """`ShapeError` when rasterising the shape would exceed the per-shape work bounds."""
    rings = [r for p in polygons for r in (p.exterior, *p.holes)]
    try:
        raster_rings(rings, height, width)
    except InputError as exc:
        raise ShapeError(exc.problem) from exc


_POINT_COUNTS = {
    "rectangle": (2, 2),
    "circle": (2, 2),
    "line": (2, 2),
    "point": (1, 1),
    "mask": (2, 2),
}


def _circle_polygon(points: np.ndarray) -> Polygon:
    (cx, cy), (px, py) = points[0], points[1]
    radius = math.hypot(px - cx, py - cy)
    if radius <= 0:
        raise ShapeError("circle has zero radius")
    angles = np.linspace(0, 2 * np.pi, CIRCLE_VERTICES, endpoint=False)
    return Polygon(np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1))


def _rectangle_polygon(points: np.ndarray) -> Polygon:
    box = Box.from_points(*points[0], *points[1])
    if box.width <= 0 or box.height <= 0:
        raise ShapeError("rectangle has zero width or height")
    return Polygon(
        np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    )


def _decode_mask(
    raw: Any, points: np.ndarray, where: str, size: tuple[int, int] | None
) -> MaskPatch:
    if not isinstance(raw, str) or not raw:
        raise ShapeError("a mask shape needs 'mask': a base64-encoded PNG")
    try:
        mask_w, mask_h = images.base64_image_size(raw, where)
    except InputError as exc:
        raise ShapeError(f"'mask' is not a readable PNG ({exc.problem})") from exc
    if size is not None and (mask_w > 3 * size[0] or mask_h > 3 * size[1]):
        raise ShapeError(
            f"the mask is {mask_w}x{mask_h}, larger than three times the {size[0]}x{size[1]} image"
        )
    try:
        arr = images.decode_mask_png(raw, where)
    except InputError as exc:
        raise ShapeError(f"'mask' is not a readable PNG ({exc.problem})") from exc
    x0, y0 = int(points[:, 0].min()), int(points[:, 1].min())
    return MaskPatch(arr, x0, y0)


def parse_shape(
    raw: Any, index: int, problems: list[Problem], path: Path, size: tuple[int, int] | None = None
) -> tuple[Annotation, str]:
    """One labelme shape dict as an Annotation (polygon groups are merged later by the caller).

    `size` (width, height) of the image, when known, bounds the coordinates (`check_extent`) and
    the work of rasterising the shape (`check_cost`).
    """
    where = f"shapes[{index}]"
    if not isinstance(raw, Mapping):
        raise ShapeError(f"a shape must be a JSON object, got {type(raw).__name__}")
    label = read_label(raw.get("label"), problems, path, where)
    shape_type = raw.get("shape_type") or "polygon"  # labelme < 3 had no shape_type
    if shape_type not in SHAPE_TYPES:
        raise ShapeError(f"unknown shape_type {shape_type!r}")
    points = _points(raw.get("points"))
    lo, hi = _POINT_COUNTS.get(shape_type, (1, None))
    if shape_type == "polygon":
        lo = 3
    elif shape_type == "linestrip":
        lo = 2
    if len(points) < lo or (hi is not None and len(points) > hi):
        expected = f"{lo}" if lo == hi else f"at least {lo}"
        raise ShapeError(f"a {shape_type} needs {expected} points, got {len(points)}")
    if size is not None:
        check_extent(points, *size)
    group_id = raw.get("group_id")
    if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
        if isinstance(group_id, str) and group_id.strip().lstrip("-").isdigit():
            group_id = int(group_id)
            problems.append(
                Problem("group_id was a string; read as a number", path, where, "warning")
            )
        else:
            raise ShapeError(f"'group_id' must be an integer or null, got {group_id!r}")
    flags = raw.get("flags") or {}
    if not isinstance(flags, Mapping) or not all(isinstance(v, bool) for v in flags.values()):
        raise ShapeError(f"'flags' must map names to true/false, got {flags!r}")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise ShapeError(f"'description' must be a string, got {description!r}")
    meta = object_at(raw, META_KEY)
    extra, replaced = json_safe({k: v for k, v in raw.items() if k not in SHAPE_KEYS})
    if replaced:
        problems.append(
            Problem(
                f"{replaced} NaN/Infinity value(s) in extra keys; JSON has none, written back as null",
                path,
                where,
                "warning",
            )
        )

    polygons: tuple[Polygon, ...] = ()
    mask = None
    kept_points: np.ndarray | None = points
    if shape_type == "polygon":
        polygons = (Polygon(points),)
        kept_points = None
        if size is not None:
            check_cost(polygons, *size)  # cheap, and bounds the validity check below
        _check_polygon(polygons[0], problems, path, where)
    elif shape_type == "rectangle":
        polygons = (_rectangle_polygon(points),)
    elif shape_type == "circle":
        polygons = (_circle_polygon(points),)
    elif shape_type == "mask":
        mask = _decode_mask(raw.get("mask"), points, f"{path}: {where}", size)
        polygons = tuple(mask.to_polygons())
    if size is not None and mask is None and shape_type != "polygon":
        check_cost(polygons, *size)
    score = meta.get("score")
    seconds = meta.get("seconds")
    annotation = Annotation(
        label=label,
        polygons=polygons,
        mask=mask,
        score=float(score) if isinstance(score, (int, float)) and math.isfinite(score) else None,
        source=str(meta.get("source") or "manual"),
        seconds=float(seconds)
        if isinstance(seconds, (int, float)) and math.isfinite(seconds)
        else None,
        flags=dict(flags),
        description=description,
        group_id=group_id,
        shape_type=shape_type,
        points=kept_points,
        extra=extra,
        **({"id": str(meta["id"])} if isinstance(meta.get("id"), str) else {}),
    )
    return annotation, where


def _check_polygon(polygon: Polygon, problems: list[Problem], path: Path, where: str) -> None:
    ring = polygon.exterior
    if len(ring) < 3:
        raise ShapeError(
            f"a polygon needs 3 distinct points, got {len(ring)} (the last one repeats the first)"
        )
    edges = ring[1:] - ring[0]
    edges = edges[np.any(edges != 0, axis=1)]
    cross = edges[0, 0] * edges[:, 1] - edges[0, 1] * edges[:, 0] if len(edges) else edges
    if not np.any(cross):
        raise ShapeError("polygon has zero area (all points on a line)")
    reason = shapely.is_valid_reason(polygon.to_shapely())
    if reason != "Valid Geometry":
        problems.append(
            Problem(
                f"polygon is self-intersecting ({reason})",
                path,
                where,
                "warning",
            )
        )


def merge_group(members: list[Annotation]) -> Annotation:
    """Polygon shapes sharing a group_id and label, as one annotation; nesting parity makes holes."""
    rings = [m.polygons[0].exterior for m in members]
    shapes = [shapely.Polygon(r) for r in rings]
    # A self-intersecting ring takes no part in the nesting: making it valid can take minutes
    # (a random 500-vertex ring has tens of thousands of crossings), so it stays a part of its own.
    valid = np.array([s.is_valid for s in shapes]) & (len(shapes) <= MAX_GROUP_RINGS)
    areas = shapely.area(np.array(shapes, dtype=object))
    geoms = np.array(shapes, dtype=object)
    depth = []
    container: list[int | None] = []
    for i in range(len(rings)):
        if not valid[i]:
            depth.append(0)
            container.append(None)
            continue
        inner = shapes[i].representative_point()
        holds = valid & (areas > areas[i]) & shapely.contains(geoms, inner)
        holds[i] = False
        holders = np.flatnonzero(holds).tolist()
        depth.append(len(holders))
        container.append(min(holders, key=lambda j: areas[j]) if holders else None)
    polygons: list[Polygon] = []
    index_of: dict[int, int] = {}
    for i, ring in enumerate(rings):
        if depth[i] % 2 == 0:
            index_of[i] = len(polygons)
            polygons.append(Polygon(ring))
    for i, ring in enumerate(rings):
        parent = container[i]
        if depth[i] % 2 == 1 and parent is not None and parent in index_of:
            k = index_of[parent]
            polygons[k] = Polygon(polygons[k].exterior, (*polygons[k].holes, ring))
    first = members[0]
    return Annotation(
        label=first.label,
        polygons=tuple(polygons),
        score=first.score,
        source=first.source,
        seconds=first.seconds,
        flags=first.flags,
        description=first.description,
        group_id=first.group_id,
        shape_type="polygon",
        extra=first.extra,
        id=first.id,
    )
