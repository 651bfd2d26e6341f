"""COCO entries checked before use: ids, image sizes, file names, RLE counts, polygon coordinates.

pycocotools trusts its input: RLE counts that add up to more than the image make it write past its
buffer, a corrupt compressed string makes it read past the string's end, and far-out polygon
vertices cost gigabytes or crash it. Everything here is checked in Python first and refused with a
`ValueError` naming the problem (docs/hostile-inputs.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from scubasteve.core.clipping import (
    MAX_MASK_PIXELS,
    MAX_SHAPE_VERTICES,
    extent_problem,
    raster_rings,
)
from scubasteve.core.files import name_problem, text_problem
from scubasteve.core.geometry import Polygon, polygons_to_mask

RLE = dict[str, Any]


def encode_mask(mask: np.ndarray) -> RLE:
    """A full-image (H, W) bool mask as compressed COCO RLE with a str `counts` (JSON-ready)."""
    rle: RLE = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def rle_string_counts(counts: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' encoding, decoded in Python so
    that a corrupt string is an error message, not a read past its end)."""
    runs: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("RLE counts string ends inside a number")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE counts string has {counts[p]!r}, not a character '0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def _rle_counts(rle: Mapping[str, Any], height: int, width: int) -> list[int]:
    size = rle.get("size")
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        raise ValueError(f"RLE 'size' must be [height, width] integers, got {size!r}")
    if size != [height, width]:
        raise ValueError(f"RLE size {size} differs from the image's {height}x{width}")
    counts = rle.get("counts")
    if isinstance(counts, str):
        runs = rle_string_counts(counts)
    elif isinstance(counts, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts
    ):
        runs = counts
    else:
        raise ValueError("RLE 'counts' must be a string or a list of integers")
    if any(v < 0 for v in runs):
        raise ValueError("RLE counts must not be negative")
    if sum(runs) != height * width:
        raise ValueError(
            f"RLE counts add up to {sum(runs):,} pixels, not the image's {height * width:,}"
        )
    return runs


def decode_rle(rle: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    """COCO RLE (compressed str or uncompressed list counts) as an (H, W) bool mask.

    The counts are checked first (`ValueError` naming the problem): pycocotools trusts them and
    writes past its buffer when they add up to more than the image.
    """
    runs = _rle_counts(rle, height, width)
    compressed = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return np.asarray(mask_utils.decode(compressed), dtype=bool)


def polygons_from_segmentation(seg: Any, height: int, width: int) -> tuple[Polygon, ...]:
    """COCO polygon segmentation (a list of flat coordinate lists) as checked polygons.

    `ValueError` when a value is not a number, a ring is too short, a coordinate lies far outside
    the image or the shape is beyond the work bounds (docs/hostile-inputs.md).
    """
    if not isinstance(seg, list) or not seg:
        raise ValueError("polygon segmentation must be a non-empty list of coordinate lists")
    polygons = tuple(_flat_polygon(s) for s in seg)
    for p in polygons:
        problem = extent_problem(p.exterior, width, height)
        if problem:
            raise ValueError(problem)
    raster_rings([p.exterior for p in polygons], height, width)
    return polygons


def segmentation_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons or RLE) as an (H, W) bool mask, checked as by the reader."""
    if isinstance(seg, Mapping):
        return decode_rle(seg, height, width)
    return polygons_to_mask(polygons_from_segmentation(seg, height, width), height, width)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flat_polygon(seg: Any) -> Polygon:
    if not isinstance(seg, list) or not all(is_number(v) for v in seg):
        raise ValueError("a polygon must be a flat list of numbers [x1, y1, x2, y2, ...]")
    if len(seg) > 2 * MAX_SHAPE_VERTICES:
        raise ValueError(f"a polygon has more than {MAX_SHAPE_VERTICES:,} points")
    try:
        arr = np.asarray(seg, dtype=np.float64)
    except OverflowError as exc:
        raise ValueError("a polygon coordinate is beyond the floating-point range") from exc
    if arr.size < 6 or arr.size % 2:
        raise ValueError(f"a polygon needs an even number (>= 6) of coordinates, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError("polygon coordinates contain NaN or infinity")
    polygon = Polygon(arr.reshape(-1, 2))
    if len(polygon.exterior) < 3:
        raise ValueError("a polygon needs 3 distinct points (the last one repeats the first)")
    return polygon


def int_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def image_size(img: Mapping[str, Any]) -> tuple[int, int]:
    size = []
    for key in ("width", "height"):
        v = img.get(key)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"'{key}' must be a positive integer, got {v!r}")
        size.append(v)
    w, h = size
    if w * h > MAX_MASK_PIXELS:
        raise ValueError(f"size {w}x{h} is above {MAX_MASK_PIXELS:,} pixels")
    return w, h


def safe_relative_name(file_name: Any) -> PurePosixPath:
    """`file_name` as a relative path inside the image folder: `ValueError` when there is no name
    (null, empty, "." or "..") or none a file system holds (`text_problem`, `name_problem`);
    leading "/", drive letters and ".." parts are dropped."""
    if not isinstance(file_name, str) or not file_name.strip():
        raise ValueError(f"'file_name' must be a non-empty string, got {file_name!r}")
    problem = text_problem(file_name) or name_problem(PureWindowsPath(file_name).as_posix())
    if problem:
        raise ValueError(f"'file_name' names no file this system can hold: {problem}")
    parts = [
        p
        for p in PureWindowsPath(file_name).as_posix().split("/")
        if p not in ("", ".", "..") and not p.endswith(":")
    ]
    if not parts or file_name.rstrip().endswith(("/", "\\")):
        raise ValueError(f"'file_name' {file_name!r} names no file")
    return PurePosixPath(*parts)
