"""LabelMe JSON: read every shape type and version labelme writes; write files labelme opens unchanged.

Holes (see docs/adr/0003-holes-in-labelme.md): labelme polygons have no holes, so an annotation with
several rings is written as several polygon shapes sharing one `group_id` (and label). Reading puts the
shapes of a group back together by nesting: a ring inside an odd number of the group's other rings is a
hole. labelme shows such a group as its outline plus its hole outlines, which is what the object is.

Our own metadata (source, score, seconds, id) travels in an extra shape key, `"scubasteve"`; labelme
keeps unknown shape keys (`other_data`) and writes them back.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import shapely

from scubasteve.core.annotation import SHAPE_TYPES, Annotation, ImageDoc, MaskPatch
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.geometry import Box, Polygon
from scubasteve.core.project import IMAGE_EXTENSIONS
from scubasteve.io import images
from scubasteve.io.atomic import atomic_write_json, read_json

#: The labelme format version we write (the shape keys of labelme 5.x).
LABELME_VERSION = "5.5.0"
META_KEY = "scubasteve"
_SHAPE_KEYS = {
    "label",
    "points",
    "group_id",
    "shape_type",
    "flags",
    "description",
    "mask",
    META_KEY,
}
_TOP_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
CIRCLE_VERTICES = 64


def labelme_path_for(image: Path) -> Path:
    """The LabelMe JSON path labelme itself uses for an image: same folder, same stem."""
    return Path(image).with_suffix(".json")


# --- reading -----------------------------------------------------------------------------------------


class _ShapeError(Exception):
    """A shape that cannot be used; the raw dict is kept and written back unchanged."""


def _resolve_image(json_path: Path, image_path: str | None) -> Path | None:
    """The image file a LabelMe file refers to, or None when nothing matching exists.

    Tries the stored (possibly Windows-style or absolute) path relative to the JSON file, then its
    base name in the JSON's folder, then an image with the JSON's stem.
    """
    folder = json_path.parent
    candidates: list[Path] = []
    if image_path:
        posix = PureWindowsPath(image_path).as_posix() if "\\" in image_path else image_path
        stored = Path(posix)
        candidates.append(stored if stored.is_absolute() else folder / stored)
        candidates.append(folder / stored.name)
    for ext in sorted(IMAGE_EXTENSIONS):
        candidates.append(json_path.with_suffix(ext))
        candidates.append(json_path.with_suffix(ext.upper()))
    for candidate in candidates:
        if candidate.suffix.lower() in IMAGE_EXTENSIONS and candidate.is_file():
            return candidate
    return None


def _points(raw: Any) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise _ShapeError("'points' must be a non-empty list of [x, y] pairs")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _ShapeError("'points' must contain only [x, y] number pairs") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise _ShapeError(f"'points' must be [x, y] pairs, got an array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise _ShapeError("'points' contain NaN or infinite coordinates")
    return arr


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
        raise _ShapeError("circle has zero radius")
    angles = np.linspace(0, 2 * np.pi, CIRCLE_VERTICES, endpoint=False)
    return Polygon(np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1))


def _rectangle_polygon(points: np.ndarray) -> Polygon:
    box = Box.from_points(*points[0], *points[1])
    if box.width <= 0 or box.height <= 0:
        raise _ShapeError("rectangle has zero width or height")
    return Polygon(
        np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    )


def _decode_mask(raw: Any, points: np.ndarray, where: str) -> MaskPatch:
    if not isinstance(raw, str) or not raw:
        raise _ShapeError("a mask shape needs 'mask': a base64-encoded PNG")
    try:
        arr = images.decode_base64_image(raw, where)[:, :, 0] > 0
    except InputError as exc:
        raise _ShapeError(f"'mask' is not a readable PNG ({exc.problem})") from exc
    x0, y0 = int(points[:, 0].min()), int(points[:, 1].min())
    return MaskPatch(arr, x0, y0)


def _parse_shape(
    raw: Any, index: int, problems: list[Problem], path: Path
) -> tuple[Annotation, str]:
    """One labelme shape dict as an Annotation (polygon groups are merged later by the caller)."""
    where = f"shapes[{index}]"
    if not isinstance(raw, Mapping):
        raise _ShapeError(f"a shape must be a JSON object, got {type(raw).__name__}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise _ShapeError(f"'label' must be a non-empty string, got {label!r}")
    shape_type = raw.get("shape_type") or "polygon"  # labelme < 3 had no shape_type
    if shape_type not in SHAPE_TYPES:
        raise _ShapeError(f"unknown shape_type {shape_type!r}")
    points = _points(raw.get("points"))
    lo, hi = _POINT_COUNTS.get(shape_type, (1, None))
    if shape_type == "polygon":
        lo = 3
    elif shape_type == "linestrip":
        lo = 2
    if len(points) < lo or (hi is not None and len(points) > hi):
        expected = f"{lo}" if lo == hi else f"at least {lo}"
        raise _ShapeError(f"a {shape_type} needs {expected} points, got {len(points)}")
    group_id = raw.get("group_id")
    if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
        if isinstance(group_id, str) and group_id.strip().lstrip("-").isdigit():
            group_id = int(group_id)
            problems.append(
                Problem("group_id was a string; read as a number", path, where, "warning")
            )
        else:
            raise _ShapeError(f"'group_id' must be an integer or null, got {group_id!r}")
    flags = raw.get("flags") or {}
    if not isinstance(flags, Mapping) or not all(isinstance(v, bool) for v in flags.values()):
        raise _ShapeError(f"'flags' must map names to true/false, got {flags!r}")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise _ShapeError(f"'description' must be a string, got {description!r}")
    meta = raw.get(META_KEY) if isinstance(raw.get(META_KEY), Mapping) else {}
    extra = {k: v for k, v in raw.items() if k not in _SHAPE_KEYS}

    polygons: tuple[Polygon, ...] = ()
    mask = None
    kept_points: np.ndarray | None = points
    if shape_type == "polygon":
        polygons = (Polygon(points),)
        kept_points = None
        poly = polygons[0].to_shapely()
        if poly.area <= 0:
            raise _ShapeError("polygon has zero area (all points on a line)")
        if not poly.is_valid:
            problems.append(
                Problem(
                    f"polygon is self-intersecting ({shapely.is_valid_reason(poly)})",
                    path,
                    where,
                    "warning",
                )
            )
    elif shape_type == "rectangle":
        polygons = (_rectangle_polygon(points),)
    elif shape_type == "circle":
        polygons = (_circle_polygon(points),)
    elif shape_type == "mask":
        mask = _decode_mask(raw.get("mask"), points, f"{path}: {where}")
        polygons = tuple(mask.to_polygons())
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


def _merge_group(members: list[Annotation]) -> Annotation:
    """Polygon shapes sharing a group_id and label, as one annotation; nesting parity makes holes."""
    rings = [m.polygons[0].exterior for m in members]
    shapes = [shapely.Polygon(r) for r in rings]
    fixed = [s if s.is_valid else shapely.make_valid(s) for s in shapes]
    depth = []
    container: list[int | None] = []
    for i in range(len(rings)):
        inner = fixed[i].representative_point()
        holders = [
            j
            for j in range(len(rings))
            if j != i and fixed[j].area > fixed[i].area and fixed[j].contains(inner)
        ]
        depth.append(len(holders))
        container.append(min(holders, key=lambda j: fixed[j].area) if holders else None)
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


def read_labelme(path: Path | str, problems: list[Problem] | None = None) -> ImageDoc:
    """Read a LabelMe JSON file into an `ImageDoc`.

    Raises `InputError` when the file cannot be used at all (not JSON, not a LabelMe object, no
    image size to be found). Problems with single shapes are appended to `problems` (if given); such
    shapes are kept verbatim in `doc.unreadable_shapes` and written back on save, never dropped.
    """
    path = Path(path)
    problems = problems if problems is not None else []
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise InputError(f"expected a LabelMe JSON object, got a JSON {type(data).__name__}", path)
    if "shapes" not in data:
        raise InputError("not a LabelMe file: it has no 'shapes' list", path)
    shapes = data["shapes"]
    if not isinstance(shapes, list):
        raise InputError(f"'shapes' must be a list, got {type(shapes).__name__}", path)
    image_path = data.get("imagePath")
    if image_path is not None and not isinstance(image_path, str):
        raise InputError(f"'imagePath' must be a string, got {image_path!r}", path)
    image_data = data.get("imageData")
    if image_data is not None and not isinstance(image_data, str):
        problems.append(
            Problem("'imageData' is not a string; ignored", path, "imageData", "warning")
        )
        image_data = None
    resolved = _resolve_image(path, image_path)
    width, height = _image_size(path, data, resolved, image_data, problems)

    annotations: list[Annotation] = []
    unreadable: list[dict[str, Any]] = []
    groups: dict[tuple[str, int], list[int]] = {}
    for i, raw in enumerate(shapes):
        try:
            ann, where = _parse_shape(raw, i, problems, path)
        except _ShapeError as exc:
            problems.append(
                Problem(f"{exc}; the shape is kept in the file but not used", path, f"shapes[{i}]")
            )
            unreadable.append(dict(raw) if isinstance(raw, Mapping) else {"value": raw})
            continue
        _check_bounds(ann, width, height, problems, path, where)
        if ann.shape_type == "polygon" and ann.group_id is not None:
            groups.setdefault((ann.label, ann.group_id), []).append(len(annotations))
        annotations.append(ann)
    merged: list[Annotation] = []
    skip: set[int] = set()
    first_of_group = {members[0]: members for members in groups.values() if len(members) > 1}
    for members in first_of_group.values():
        skip.update(members[1:])
    for i, ann in enumerate(annotations):
        if i in skip:
            continue
        merged.append(
            _merge_group([annotations[j] for j in first_of_group[i]])
            if i in first_of_group
            else ann
        )

    flags = data.get("flags") or {}
    if not isinstance(flags, Mapping):
        problems.append(Problem("'flags' is not an object; ignored", path, "flags", "warning"))
        flags = {}
    doc_path = (
        resolved
        if resolved is not None
        else path.parent
        / (
            Path(PureWindowsPath(image_path).as_posix()).name
            if image_path
            else path.with_suffix(".jpg").name
        )
    )
    return ImageDoc(
        path=doc_path,
        width=width,
        height=height,
        annotations=merged,
        flags=dict(flags),
        extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
        image_data=image_data,
        unreadable_shapes=unreadable,
        loader=_make_loader(doc_path, resolved, image_data, path),
    )


def _image_size(
    path: Path,
    data: Mapping[str, Any],
    resolved: Path | None,
    image_data: str | None,
    problems: list[Problem],
) -> tuple[int, int]:
    stored_w, stored_h = data.get("imageWidth"), data.get("imageHeight")
    stored_ok = all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (stored_w, stored_h)
    )
    actual: tuple[int, int] | None = None
    try:
        if resolved is not None:
            actual = images.read_image_size(resolved)
        elif image_data:
            actual = images.base64_image_size(image_data, path)
    except InputError as exc:
        problems.append(
            Problem(f"the image cannot be read: {exc.problem}", path, "imagePath", "warning")
        )
    if actual is not None:
        if stored_ok and (stored_w, stored_h) != actual:
            problems.append(
                Problem(
                    f"imageWidth/imageHeight {stored_w}x{stored_h} differ from the image's "
                    f"{actual[0]}x{actual[1]}; using the image's",
                    path,
                    "imageWidth",
                    "warning",
                )
            )
        return actual
    if stored_ok:
        if resolved is None and not image_data:
            problems.append(
                Problem(
                    "the image file was not found; using the stored size",
                    path,
                    "imagePath",
                    "warning",
                )
            )
        return int(stored_w), int(stored_h)  # type: ignore[arg-type]
    raise InputError(
        "the image was not found and the file stores no valid imageWidth/imageHeight", path
    )


def _make_loader(doc_path: Path, resolved: Path | None, image_data: str | None, json_path: Path):  # type: ignore[no-untyped-def]
    def load() -> np.ndarray:
        if resolved is not None:
            return images.load_image(resolved)
        if image_data:
            return images.decode_base64_image(image_data, json_path)
        raise InputError("the image file was not found and the LabelMe file embeds none", doc_path)

    return load


def _check_bounds(
    ann: Annotation, width: int, height: int, problems: list[Problem], path: Path, where: str
) -> None:
    box = ann.bounds()
    if box is None:
        return
    tol = 1.0  # points on the far edge (x == width) are legitimate in labelme files
    if box.x0 < -tol or box.y0 < -tol or box.x1 > width + tol or box.y1 > height + tol:
        problems.append(
            Problem(
                f"coordinates reach outside the {width}x{height} image "
                f"(x {box.x0:.1f}..{box.x1:.1f}, y {box.y0:.1f}..{box.y1:.1f}); masks are clipped",
                path,
                where,
                "warning",
            )
        )


# --- writing -----------------------------------------------------------------------------------------


def _ring_points(ring: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in ring]


def _meta(ann: Annotation) -> dict[str, Any]:
    meta: dict[str, Any] = {"id": ann.id, "source": ann.source}
    if ann.score is not None:
        meta["score"] = round(float(ann.score), 4)
    if ann.seconds is not None:
        meta["seconds"] = round(float(ann.seconds), 2)
    return meta


def _shape(
    ann: Annotation, shape_type: str, points: list[list[float]], group_id: int | None, meta: bool
) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "label": ann.label,
        "points": points,
        "group_id": group_id,
        "description": ann.description,
        "shape_type": shape_type,
        "flags": dict(ann.flags),
        "mask": None,
    }
    shape.update({k: v for k, v in ann.extra.items() if k not in _SHAPE_KEYS})
    if meta:
        shape[META_KEY] = _meta(ann)
    return shape


def annotation_shapes(ann: Annotation, next_group_id: int) -> tuple[list[dict[str, Any]], int]:
    """LabelMe shape dicts for one annotation, and the next free group id."""
    if (
        ann.shape_type in ("rectangle", "circle", "line", "point", "points", "linestrip")
        and ann.points is not None
    ):
        pts = _ring_points(ann.points)
        return [_shape(ann, ann.shape_type, pts, ann.group_id, True)], next_group_id
    if ann.shape_type == "mask" and ann.mask is not None:
        patch = ann.mask
        shape = _shape(
            ann,
            "mask",
            [
                [float(patch.x), float(patch.y)],
                [float(patch.x + patch.width - 1), float(patch.y + patch.height - 1)],
            ],
            ann.group_id,
            True,
        )
        png = images.encode_png(
            np.repeat((patch.mask.astype(np.uint8) * 255)[:, :, None], 3, axis=2)
        )
        shape["mask"] = base64.b64encode(png).decode("ascii")
        return [shape], next_group_id
    rings = [r for p in ann.polygons for r in (p.exterior, *p.holes)]
    if not rings:
        return [], next_group_id
    group_id = ann.group_id
    if len(rings) > 1 and group_id is None:
        group_id, next_group_id = next_group_id, next_group_id + 1
    shapes = [
        _shape(ann, "polygon", _ring_points(r), group_id, i == 0) for i, r in enumerate(rings)
    ]
    return shapes, next_group_id


def labelme_dict(doc: ImageDoc, json_path: Path, embed_image: bool = False) -> dict[str, Any]:
    """The LabelMe JSON object for `doc` as it would be written to `json_path`."""
    used = [a.group_id for a in doc.annotations if a.group_id is not None]
    next_gid = max(used, default=0) + 1
    shapes: list[dict[str, Any]] = []
    for ann in doc.annotations:
        new, next_gid = annotation_shapes(ann, next_gid)
        shapes.extend(new)
    shapes.extend(doc.unreadable_shapes)
    image_data = doc.image_data
    if embed_image and image_data is None:
        image_data = base64.b64encode(Path(doc.path).read_bytes()).decode("ascii")
    data: dict[str, Any] = {
        "version": LABELME_VERSION,
        "flags": dict(doc.flags),
        "shapes": shapes,
        "imagePath": _relative_image_path(doc.path, json_path),
        "imageData": image_data,
        "imageHeight": int(doc.height),
        "imageWidth": int(doc.width),
    }
    for key, value in doc.extra.items():
        if key not in data:
            data[key] = value
    return data


def _relative_image_path(image: Path, json_path: Path) -> str:
    try:
        rel = os.path.relpath(Path(image).resolve(), Path(json_path).resolve().parent)
    except ValueError:  # another drive on Windows
        return Path(image).resolve().as_posix()
    return Path(rel).as_posix()


def write_labelme(doc: ImageDoc, path: Path | str, embed_image: bool = False) -> None:
    """Write `doc` as LabelMe JSON to `path` atomically (the old file survives any failure)."""
    path = Path(path)
    atomic_write_json(path, labelme_dict(doc, path, embed_image=embed_image))
