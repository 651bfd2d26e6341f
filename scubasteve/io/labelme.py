"""LabelMe JSON: read every shape type and version labelme writes; write files labelme opens unchanged.

Holes (see docs/adr/0003-holes-and-metadata-in-labelme.md): labelme polygons have no holes, so an annotation with
several rings is written as several polygon shapes sharing one `group_id` (and label). Reading puts the
shapes of a group back together by nesting: a ring inside an odd number of the group's other rings is a
hole. labelme shows such a group as its outline plus its hole outlines, which is what the object is.

Our own metadata (source, score, seconds, id) travels in an extra shape key, `"scubasteve"`; labelme
keeps unknown shape keys (`other_data`) and writes them back.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.atomic import atomic_write_json
from scubasteve.core.clipping import MAX_MASK_PIXELS
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.project import IMAGE_EXTENSIONS
from scubasteve.io import images
from scubasteve.io.json_files import json_safe, read_json
from scubasteve.io.labelme_shapes import (
    MAX_GROUP_RINGS,
    META_KEY,
    SHAPE_KEYS,
    ShapeError,
    merge_group,
    parse_shape,
)

#: The labelme format version we write (the shape keys of labelme 5.x).
LABELME_VERSION = "5.5.0"
_TOP_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}


def labelme_path_for(image: Path) -> Path:
    """The LabelMe JSON path labelme itself uses for an image: same folder, same stem."""
    return Path(image).with_suffix(".json")


# --- reading -----------------------------------------------------------------------------------------


def _unsupported_image(json_path: Path, image_path: str | None) -> Path | None:
    """The stored image path when it exists but is not an image type we open (e.g. a GIF)."""
    if not image_path:
        return None
    posix = PureWindowsPath(image_path).as_posix() if "\\" in image_path else image_path
    stored = Path(posix) if Path(posix).is_absolute() else json_path.parent / posix
    try:
        exists = stored.is_file()
    except OSError:  # a name too long or otherwise impossible on this system
        return None
    return stored if exists and stored.suffix.lower() not in IMAGE_EXTENSIONS else None


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
        try:
            if candidate.suffix.lower() in IMAGE_EXTENSIONS and candidate.is_file():
                return candidate
        except OSError:  # a name too long or otherwise impossible on this system
            continue
    return None


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
    unsupported = _unsupported_image(path, image_path) if resolved is None else None
    if unsupported is not None:
        problems.append(
            Problem(
                f"{unsupported.name} exists but {unsupported.suffix or 'a file without extension'}"
                f" is not an image type Scuba Steve opens ({', '.join(sorted(IMAGE_EXTENSIONS))})",
                path,
                "imagePath",
                "warning",
            )
        )
    width, height = _image_size(path, data, resolved, image_data, problems, unsupported is None)

    annotations: list[Annotation] = []
    unreadable: list[dict[str, Any]] = []
    groups: dict[tuple[str, int], list[int]] = {}
    for i, raw in enumerate(shapes):
        try:
            ann, where = parse_shape(raw, i, problems, path, (width, height))
        except (ShapeError, ValueError, TypeError, OverflowError) as exc:
            reason = str(exc) if isinstance(exc, ShapeError) else f"cannot be read ({exc})"
            problems.append(
                Problem(
                    f"{reason}; the shape is kept in the file but not used", path, f"shapes[{i}]"
                )
            )
            kept, _ = json_safe(dict(raw) if isinstance(raw, Mapping) else {"value": raw})
            unreadable.append(kept)
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
        if len(members) > MAX_GROUP_RINGS:
            problems.append(
                Problem(
                    f"group {annotations[members[0]].group_id} has {len(members)} polygons; above "
                    f"{MAX_GROUP_RINGS} they are kept as parts, not nested into holes",
                    path,
                    "shapes",
                    "warning",
                )
            )
    for i, ann in enumerate(annotations):
        if i in skip:
            continue
        merged.append(
            merge_group([annotations[j] for j in first_of_group[i]]) if i in first_of_group else ann
        )

    flags = data.get("flags") or {}
    if not isinstance(flags, Mapping):
        problems.append(Problem("'flags' is not an object; ignored", path, "flags", "warning"))
        flags = {}
    for key in [k for k, v in flags.items() if not isinstance(v, bool)]:
        problems.append(
            Problem(
                f"flag {key!r} is {flags[key]!r}, not true/false; ignored (dropped on save)",
                path,
                "flags",
                "warning",
            )
        )
    flags = {k: v for k, v in flags.items() if isinstance(v, bool)}
    extra, replaced = json_safe({k: v for k, v in data.items() if k not in _TOP_KEYS})
    if replaced:
        problems.append(
            Problem(
                f"{replaced} NaN/Infinity value(s) in extra keys; JSON has none, written back as null",
                path,
                ", ".join(sorted(extra)),
                "warning",
            )
        )
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
        extra=extra,
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
    report_missing: bool = True,
) -> tuple[int, int]:
    stored_w, stored_h = data.get("imageWidth"), data.get("imageHeight")
    stored_ok = all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (stored_w, stored_h)
    )
    if stored_ok and stored_w * stored_h > MAX_MASK_PIXELS:  # type: ignore[operator]
        problems.append(
            Problem(
                f"imageWidth x imageHeight {stored_w}x{stored_h} is above {MAX_MASK_PIXELS:,} "
                "pixels; ignored",
                path,
                "imageWidth",
                "warning",
            )
        )
        stored_ok = False
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
    if actual is not None and resolved is not None and image_data:
        _check_embedded_size(path, resolved, actual, image_data)
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
        if resolved is None and not image_data and report_missing:
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


def _check_embedded_size(
    path: Path, resolved: Path, actual: tuple[int, int], image_data: str
) -> None:
    """`InputError` when `imageData` is an image of another size than the file `imagePath` names.

    labelme shows `imageData` and refuses a file whose stored size differs from it; we show the
    file. With two pictures of different sizes the shapes belong to one of them only, and which
    one cannot be told: the file is refused here too, rather than drawn on the wrong picture.
    """
    try:
        embedded = images.base64_image_size(image_data, path)
    except InputError:
        return  # a broken imageData is not used while the file exists
    if embedded != actual:
        raise InputError(
            f"imageData is a {embedded[0]}x{embedded[1]} image but imagePath {resolved.name} is "
            f"{actual[0]}x{actual[1]}: two different pictures, and the shapes fit one of them "
            "only (labelme refuses such a file too); remove imageData or fix imagePath",
            path,
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
    """Points rounded to 3 decimals, or kept exact where rounding would make points coincide or
    the ring lose its area (a sub-pixel shape would otherwise not survive being saved)."""
    rounded = [[round(float(x), 3), round(float(y), 3)] for x, y in ring]
    exact = np.asarray(ring, dtype=np.float64)
    if len(exact) > 1 and _collapses(exact, np.asarray(rounded)):
        return [[float(x), float(y)] for x, y in exact]
    return rounded


def _collapses(exact: np.ndarray, rounded: np.ndarray) -> bool:
    def same_as_next(a: np.ndarray) -> np.ndarray:
        return np.asarray(np.all(a == np.roll(a, -1, axis=0), axis=1))

    if np.any(same_as_next(rounded) & ~same_as_next(exact)):
        return True
    if len(exact) < 3:
        return False

    def twice_area(a: np.ndarray) -> float:
        x, y = a[:, 0] - a[0, 0], a[:, 1] - a[0, 1]
        return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    return twice_area(rounded) == 0 and twice_area(exact) != 0


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
    shape.update({k: v for k, v in ann.extra.items() if k not in SHAPE_KEYS})
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
    shapes.extend(json_safe(s)[0] for s in doc.unreadable_shapes)
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


def write_labelme(
    doc: ImageDoc, path: Path | str, embed_image: bool = False, *, replace: bool = True
) -> None:
    """Write `doc` as LabelMe JSON to `path` atomically (the old file survives any failure).

    `replace=False` never replaces an existing file (`AlreadyExists`), even one that another
    process created while this one was written.
    """
    path = Path(path)
    atomic_write_json(path, labelme_dict(doc, path, embed_image=embed_image), replace=replace)
