"""Evaluation samples for the proposal benchmark: an image, a prompt box and the true mask.

Samples come from a COCO instances file (polygons or RLE) or from a folder of LabelMe JSON files.
Images are loaded lazily, one at a time, and optionally downscaled so that the longer side is at
most `max_side`; boxes and true masks are scaled with them. The prompt box is the true mask's box
grown by `box_grow` of its size on each side, clipped to the image, as a user's loose drag would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box, Polygon, mask_bbox, polygons_to_mask


@dataclass(frozen=True)
class Sample:
    """One object to segment: `key` (the annotation id), the prompt `box` and the true mask `gt`."""

    key: str
    box: Box
    gt: MaskPatch


@dataclass(frozen=True)
class SampleImage:
    """One image and its samples. `load()` returns (H, W, 3) uint8 RGB at the samples' scale."""

    name: str
    width: int
    height: int
    samples: tuple[Sample, ...]
    load: Callable[[], np.ndarray]


def _scale_for(width: int, height: int, max_side: int | None) -> float:
    if max_side is None or max_side <= 0 or max(width, height) <= max_side:
        return 1.0
    return max_side / max(width, height)


def _loader(path: Path, scale: float, size: tuple[int, int]) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from scubasteve.io.images import load_image

        img = load_image(path)
        if scale != 1.0 or (img.shape[1], img.shape[0]) != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return img

    return load


def make_sample(key: str, mask: np.ndarray, box_grow: float) -> Sample | None:
    """A sample from a full-image bool mask; None when the mask is empty."""
    tight = mask_bbox(mask)
    if tight is None:
        return None
    height, width = mask.shape
    box = tight.grow(box_grow).clip(width, height)
    return Sample(key, box, MaskPatch.from_full(mask))


def load_coco_samples(
    coco_json: Path,
    images_dir: Path,
    *,
    box_grow: float = 0.05,
    limit: int | None = None,
    max_side: int | None = 1024,
    min_area: float = 0.0,
    image_ids: Sequence[int] | None = None,
) -> list[SampleImage]:
    """Samples for every non-crowd instance of a COCO file, grouped by image, in file order."""
    from pycocotools import mask as mask_utils

    try:
        data = json.loads(Path(coco_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the COCO file: {exc}", coco_json) from exc
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError("not a COCO instances file (no 'images' or 'annotations')", coco_json)
    wanted = set(image_ids) if image_ids else None
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or float(ann.get("area", 0.0)) < min_area:
            continue
        by_image.setdefault(ann["image_id"], []).append(ann)

    result: list[SampleImage] = []
    remaining = limit if limit is not None else -1
    for info in data["images"]:
        if remaining == 0:
            break
        if wanted is not None and info["id"] not in wanted:
            continue
        anns = by_image.get(info["id"], [])
        if not anns:
            continue
        w0, h0 = int(info["width"]), int(info["height"])
        scale = _scale_for(w0, h0, max_side)
        w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
        samples = []
        for ann in anns:
            if remaining == 0:
                break
            seg = ann["segmentation"]
            if isinstance(seg, list):
                rings = [np.asarray(s, dtype=np.float64).reshape(-1, 2) * scale for s in seg]
                mask = polygons_to_mask([Polygon(r) for r in rings if len(r) >= 3], h, w)
            else:
                rle = seg
                if isinstance(seg.get("counts"), list):
                    rle = mask_utils.frPyObjects(seg, h0, w0)
                mask = mask_utils.decode(rle).astype(bool)
                if scale != 1.0:
                    mask = cv2.resize(
                        mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST
                    )
                    mask = mask.astype(bool)
            sample = make_sample(str(ann["id"]), mask, box_grow)
            if sample is not None:
                samples.append(sample)
                remaining -= 1
        if samples:
            path = Path(images_dir) / info["file_name"]
            result.append(
                SampleImage(info["file_name"], w, h, tuple(samples), _loader(path, scale, (w, h)))
            )
    return result


def load_labelme_samples(
    folder: Path, *, box_grow: float = 0.05, max_side: int | None = 1024
) -> list[SampleImage]:
    """Samples for the polygon shapes of every LabelMe JSON file under `folder` (recursively).

    Polygons sharing a label and a non-null group_id form one object, as labelme itself treats them.
    Images come from `imagePath` next to the JSON, else from the embedded `imageData`.
    """
    from scubasteve.io.images import decode_base64_image, load_image

    result: list[SampleImage] = []
    for json_path in sorted(Path(folder).rglob("*.json")):
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or "shapes" not in doc:
            continue
        image_path = json_path.parent / str(doc.get("imagePath") or "")
        if image_path.is_file() and image_path.suffix.lower() != ".json":

            def raw(p: Path = image_path) -> np.ndarray:
                return load_image(p)

        elif doc.get("imageData"):

            def raw(data: str = doc["imageData"], p: Path = json_path) -> np.ndarray:
                return decode_base64_image(data, p)

        else:
            continue
        h0, w0 = int(doc.get("imageHeight") or 0), int(doc.get("imageWidth") or 0)
        if h0 <= 0 or w0 <= 0:
            h0, w0 = raw().shape[:2]
        scale = _scale_for(w0, h0, max_side)
        w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
        groups: dict[tuple, list[Polygon]] = {}
        for i, shape in enumerate(doc["shapes"]):
            pts = np.asarray(shape.get("points") or [], dtype=np.float64).reshape(-1, 2)
            if shape.get("shape_type", "polygon") != "polygon" or len(pts) < 3:
                continue
            gid = shape.get("group_id")
            key = (shape.get("label"), gid) if gid is not None else (shape.get("label"), "#", i)
            groups.setdefault(key, []).append(Polygon(pts * scale))
        samples = []
        for n, polys in enumerate(groups.values()):
            sample = make_sample(f"{json_path.stem}/{n}", polygons_to_mask(polys, h, w), box_grow)
            if sample is not None:
                samples.append(sample)
        if samples:

            def load(
                raw: Callable[[], np.ndarray] = raw, size: tuple[int, int] = (w, h)
            ) -> np.ndarray:
                img = raw()
                if (img.shape[1], img.shape[0]) != size:
                    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                return img

            name = str(json_path.relative_to(folder))
            result.append(SampleImage(name, w, h, tuple(samples), load))
    return result


def every_nth(images: Sequence[SampleImage], every: int, offset: int = 0) -> list[SampleImage]:
    """Every `every`-th object from `offset` on, counted over the whole set in order: a fixed split.

    `every=2` with offsets 0 and 1 gives two disjoint halves (one to tune on, one to report).
    """
    out, n = [], 0
    for si in images:
        kept = []
        for s in si.samples:
            if n % every == offset % every:
                kept.append(s)
            n += 1
        if kept:
            out.append(SampleImage(si.name, si.width, si.height, tuple(kept), si.load))
    return out
