"""COCO instances JSON: read (polygons, RLE, boxes) and write files pycocotools loads and evaluates.

Masks with holes cannot be COCO polygons (pycocotools unites a shape's polygons), so such annotations
are written as RLE; everything else as polygons unless `rle=True`. Category ids start at 1, image and
annotation ids at 1. `area` and `bbox` come from pycocotools' own rasterisation, so they agree with
what COCOeval computes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch
from scubasteve.core.atomic import atomic_write_json
from scubasteve.core.clipping import (
    extent_problem,
    raster_rings,
)
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.files import text_problem
from scubasteve.core.geometry import Box, Polygon
from scubasteve.io import images
from scubasteve.io.coco_checks import (
    RLE,
    decode_rle,
    encode_mask,
    image_size,
    int_id,
    is_number,
    polygons_from_segmentation,
    safe_relative_name,
)
from scubasteve.io.json_files import object_at, read_json
from scubasteve.io.labelme_shapes import ShapeError, read_label


@dataclass
class CocoDataset:
    """A COCO file read into documents.

    `categories`: names in category-id order; `category_ids`: name -> id as in the file (the
    first id of a name that several ids share); `category_names`: every id -> its name;
    `image_ids`: the COCO image id of each doc; `annotation_ids`: per doc, the COCO id of each
    annotation (in the doc's order).
    """

    docs: list[ImageDoc]
    categories: list[str]
    category_ids: dict[str, int]
    image_ids: list[int]
    annotation_ids: list[list[int]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    file_names: list[str] = field(default_factory=list)  # each doc's `file_name` as in the file
    category_names: dict[int, str] = field(default_factory=dict)


# --- RLE helpers --------------------------------------------------------------------------------------


def annotation_to_rle(ann: Annotation, height: int, width: int) -> RLE:
    """The annotation's area as compressed RLE (str counts) on an image of the given size."""
    if ann.mask is None and not any(p.holes for p in ann.polygons):
        rings = raster_rings([p.exterior for p in ann.polygons], height, width)
        segs = [r.ravel().tolist() for r in rings]
        if not segs:
            return encode_mask(np.zeros((height, width), dtype=bool))
        rle: RLE = mask_utils.merge(mask_utils.frPyObjects(segs, height, width))
        rle["counts"] = rle["counts"].decode("ascii")
        return rle
    return encode_mask(ann.to_mask(height, width))


# --- reading --------------------------------------------------------------------------------------------


def _default_images_dir(json_path: Path) -> Path:
    candidate = json_path.parent / "images"
    return candidate if candidate.is_dir() else json_path.parent


def _parse_annotation(
    raw: Mapping[str, Any], label: str, height: int, width: int, rle_outlines: bool = True
) -> Annotation:
    seg = raw.get("segmentation")
    meta = object_at(raw, "scubasteve")
    extra: dict[str, Any] = {}
    if raw.get("iscrowd"):
        extra["iscrowd"] = 1
    score: Any = raw.get("score", meta.get("score"))
    if score is not None and not (is_number(score) and math.isfinite(score)):
        raise ValueError(f"'score' must be a finite number, got {score!r}")
    seconds: Any = meta.get("seconds")
    common: dict[str, Any] = {
        "label": label,
        "score": float(score) if score is not None else None,
        "source": str(meta.get("source") or "imported"),
        "seconds": float(seconds) if is_number(seconds) and math.isfinite(seconds) else None,
        "extra": extra,
    }
    if isinstance(seg, list) and seg:
        return Annotation(polygons=polygons_from_segmentation(seg, height, width), **common)
    if isinstance(seg, Mapping):
        patch = MaskPatch.from_full(decode_rle(seg, height, width))
        if patch.area == 0:
            raise ValueError("RLE mask is empty")
        extra["rle"] = True
        outline = tuple(patch.to_polygons()) if rle_outlines else ()
        return Annotation(polygons=outline, mask=patch, **common)
    bbox = raw.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        if not all(is_number(v) and math.isfinite(v) for v in bbox):
            raise ValueError(f"bbox must be four finite numbers, got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        if not (w > 0 and h > 0):
            raise ValueError(f"bbox {bbox} has no area")
        problem = extent_problem(np.array([[x, y], [x + w, y + h]]), width, height)
        if problem:
            raise ValueError(problem)
        box = Box.from_xywh(x, y, w, h)
        corners = np.array([[box.x0, box.y0], [box.x1, box.y1]])
        return Annotation(
            polygons=(Polygon(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])),),
            shape_type="rectangle",
            points=corners,
            **common,
        )
    raise ValueError("annotation has neither a segmentation nor a bbox")


def _read_categories(raw_cats: list[Any], path: Path, problems: list[Problem]) -> dict[int, str]:
    """Category id -> label. Names are normalised (`read_label`); ids that share a name are one
    label (a warning), so that annotations and predictions of either id are read alike."""
    cat_names: dict[int, str] = {}
    first_id: dict[str, int] = {}
    for i, cat in enumerate(raw_cats):
        where = f"categories[{i}]"
        cid = int_id(cat.get("id")) if isinstance(cat, Mapping) else None
        try:
            if cid is None:
                raise ShapeError("no integer 'id'")
            name = read_label(cat.get("name"), problems, path, where)
        except ShapeError as exc:
            problems.append(
                Problem(f"category needs an integer 'id' and a 'name' ({exc})", path, where)
            )
            continue
        if cid in cat_names:
            problems.append(
                Problem(
                    f"category id {cid} is used twice ({cat_names[cid]!r} and {name!r}); "
                    f"this entry is ignored, annotations with id {cid} are {cat_names[cid]!r}",
                    path,
                    where,
                )
            )
            continue
        if name in first_id:
            problems.append(
                Problem(
                    f"category name {name!r} is used by ids {first_id[name]} and {cid}; "
                    f"annotations of both are read as the one label {name!r}",
                    path,
                    where,
                    "warning",
                )
            )
        first_id.setdefault(name, cid)
        cat_names[cid] = name
    return cat_names


def read_coco(
    path: Path | str,
    images_dir: Path | str | None = None,
    problems: list[Problem] | None = None,
    *,
    rle_outlines: bool = True,
) -> CocoDataset:
    """Read a COCO instances file. Bad entries are reported in `problems` and skipped;
    a file that is not a COCO instances object raises `InputError`.

    `rle_outlines=False` leaves the `polygons` of RLE annotations empty (their exact `mask` is
    kept): tracing large masks is most of the reading time, and readers that need only the pixels
    (the benchmarks) skip it.
    """
    path = Path(path)
    problems = problems if problems is not None else []
    data = read_json(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list):
        raise InputError("not a COCO instances file: no 'images' list", path)
    raw_cats = data.get("categories") or []
    if not isinstance(raw_cats, list):
        raise InputError("'categories' must be a list", path)
    raw_anns = data.get("annotations") or []
    if not isinstance(raw_anns, list):
        raise InputError("'annotations' must be a list", path)
    folder = Path(images_dir) if images_dir else _default_images_dir(path)
    info = data.get("info") or {}
    if not isinstance(info, Mapping):
        problems.append(Problem("'info' is not an object; ignored", path, "info", "warning"))
        info = {}

    cat_names = _read_categories(raw_cats, path, problems)

    docs: list[ImageDoc] = []
    image_ids: list[int] = []
    file_names: list[str] = []
    index_of: dict[int, int] = {}
    refused: set[int] = set()
    for i, img in enumerate(data["images"]):
        where = f"images[{i}]"
        image_id = int_id(img.get("id")) if isinstance(img, Mapping) else None
        try:
            if not isinstance(img, Mapping):
                raise ValueError("an image entry must be an object")
            if image_id is None:
                raise ValueError(f"'id' must be an integer, got {img.get('id')!r}")
            width, height = image_size(img)
            relative = safe_relative_name(img.get("file_name"))
        except ValueError as exc:
            if image_id is not None:
                refused.add(image_id)
            problems.append(Problem(f"image entry skipped: {exc}", path, where))
            continue
        if image_id in index_of:
            problems.append(Problem(f"duplicate image id {image_id}", path, where))
            continue
        file_name = str(img["file_name"])
        if relative.as_posix() != PureWindowsPath(file_name).as_posix():
            problems.append(
                Problem(
                    f"file_name {file_name!r} is absolute or leaves the image folder; "
                    f"converted to LabelMe it is named {relative.as_posix()!r}",
                    path,
                    where,
                    "warning",
                )
            )
        image_path = folder / PureWindowsPath(file_name).as_posix()
        index_of[image_id] = len(docs)
        image_ids.append(image_id)
        file_names.append(relative.as_posix())
        docs.append(
            ImageDoc(
                path=image_path,
                width=width,
                height=height,
                loader=functools.partial(images.load_image, image_path),
            )
        )

    ann_ids: list[list[int]] = [[] for _ in docs]
    for i, raw in enumerate(raw_anns):
        where = f"annotations[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(Problem("annotation must be an object", path, where))
            continue
        image_id = int_id(raw.get("image_id"))
        if image_id in refused:
            continue  # its image was reported
        doc_index = index_of.get(image_id) if image_id is not None else None
        if doc_index is None:
            problems.append(
                Problem(f"image_id {raw.get('image_id')!r} is not in 'images'", path, where)
            )
            continue
        category_id = int_id(raw.get("category_id"))
        label = cat_names.get(category_id) if category_id is not None else None
        if label is None:
            problems.append(
                Problem(
                    f"category_id {raw.get('category_id')!r} is not in 'categories'", path, where
                )
            )
            continue
        doc = docs[doc_index]
        try:
            ann = _parse_annotation(raw, label, doc.height, doc.width, rle_outlines)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            problems.append(Problem(str(exc), path, where))
            continue
        ann_id = int_id(raw.get("id"))
        if ann_id is None and raw.get("id") is not None:
            problems.append(
                Problem(
                    f"'id' {raw.get('id')!r} is not an integer; ignored", path, where, "warning"
                )
            )
        doc.annotations.append(ann)
        ann_ids[doc_index].append(ann_id or 0)

    ordered = list(dict.fromkeys(cat_names[k] for k in sorted(cat_names)))
    first_ids: dict[str, int] = {}
    for cid, name in cat_names.items():
        first_ids.setdefault(name, cid)
    return CocoDataset(
        docs=docs,
        categories=ordered,
        category_ids=first_ids,
        category_names=dict(cat_names),
        image_ids=image_ids,
        annotation_ids=ann_ids,
        info=dict(info),
        file_names=file_names,
    )


# --- writing ---------------------------------------------------------------------------------------------


def _file_name(image: Path, root: Path | None, problems: list[Problem]) -> str:
    if root is not None:
        try:
            return Path(image).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            problems.append(
                Problem(
                    f"the image is outside {root}; its file_name is written as the absolute path",
                    image,
                    severity="warning",
                )
            )
            return Path(image).resolve().as_posix()
    return Path(image).name


def coco_dict(
    docs: Sequence[ImageDoc],
    categories: Sequence[str] | None = None,
    root: Path | None = None,
    rle: bool = False,
    image_ids: Sequence[int] | None = None,
    problems: list[Problem] | None = None,
) -> dict[str, Any]:
    """COCO instances JSON for `docs`.

    `categories` fixes the category order (ids from 1); labels not in it are appended in order of
    appearance. `root` makes `file_name` relative to it. `rle` writes every mask as RLE. Annotations
    without area (lines, points) are skipped and reported in `problems`, and so are images whose
    file name is not valid Unicode (a byte that is not UTF-8; an error).
    """
    problems = problems if problems is not None else []
    kept: list[tuple[int, ImageDoc, str]] = []
    for d, doc in enumerate(docs):
        file_name = _file_name(doc.path, root, problems)
        problem = text_problem(file_name)
        if problem:  # the COCO file must be UTF-8 that any reader takes
            problems.append(
                Problem(f"the image is left out: its name cannot be written: {problem}", doc.path)
            )
            continue
        kept.append((d, doc, file_name))
    names = list(dict.fromkeys(categories or []))
    for _, doc, _ in kept:
        for ann in doc.annotations:
            if ann.has_area and ann.label not in names:
                names.append(ann.label)
    cat_id = {name: i + 1 for i, name in enumerate(names)}
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for d, doc, file_name in kept:
        image_id = int(image_ids[d]) if image_ids is not None else d + 1
        out_images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": int(doc.width),
                "height": int(doc.height),
            }
        )
        for a, ann in enumerate(doc.annotations):
            if not ann.has_area:
                problems.append(
                    Problem(
                        f"a {ann.shape_type} has no area; not exported to COCO",
                        doc.path,
                        f"annotations[{a}]",
                        "warning",
                    )
                )
                continue
            entry = _annotation_entry(ann, doc, rle)
            if entry is None:
                problems.append(
                    Problem(
                        "the shape covers no pixel of the image; not exported",
                        doc.path,
                        f"annotations[{a}]",
                        "warning",
                    )
                )
                continue
            entry.update(
                {"id": len(out_anns) + 1, "image_id": image_id, "category_id": cat_id[ann.label]}
            )
            out_anns.append(entry)
    return {
        "info": {"description": "exported by Scuba Steve"},
        "images": out_images,
        "annotations": out_anns,
        "categories": [{"id": cat_id[n], "name": n, "supercategory": "object"} for n in names],
    }


def mask_fields(
    ann: Annotation, height: int, width: int, rle: bool = False
) -> dict[str, Any] | None:
    """The `segmentation`, `area` and `bbox` of an annotation on a (height, width) image as this
    module writes them (polygons; RLE for masks with holes, RLE-read masks, or when `rle`);
    None when it covers no pixel of the image."""
    mask_rle = annotation_to_rle(ann, height, width)
    area = float(mask_utils.area(mask_rle))
    if area <= 0:
        return None
    bbox = [float(v) for v in mask_utils.toBbox(mask_rle)]
    use_rle = (
        rle
        or (ann.mask is not None and bool(ann.extra.get("rle")))
        or any(p.holes for p in ann.polygons)
    )
    segmentation: Any = (
        mask_rle
        if use_rle
        else [[round(float(v), 3) for v in p.exterior.ravel()] for p in ann.polygons]
    )
    return {"segmentation": segmentation, "area": area, "bbox": bbox}


def _annotation_entry(ann: Annotation, doc: ImageDoc, rle: bool) -> dict[str, Any] | None:
    entry = mask_fields(ann, int(doc.height), int(doc.width), rle)
    if entry is None:
        return None
    entry["iscrowd"] = int(bool(ann.extra.get("iscrowd", 0)))
    meta: dict[str, Any] = {"source": ann.source}
    if ann.score is not None:
        meta["score"] = float(ann.score)
    if ann.seconds is not None:
        meta["seconds"] = float(ann.seconds)
    entry["scubasteve"] = meta
    return entry


def write_coco(
    path: Path | str,
    docs: Sequence[ImageDoc],
    categories: Sequence[str] | None = None,
    root: Path | None = None,
    rle: bool = False,
    problems: list[Problem] | None = None,
    *,
    replace: bool = True,
) -> dict[str, Any]:
    """Write a COCO instances file atomically; returns the written dict. `replace=False` never
    replaces an existing file (`AlreadyExists`), even one that appeared while this one was made."""
    data = coco_dict(docs, categories=categories, root=root, rle=rle, problems=problems)
    atomic_write_json(Path(path), data, indent=None, replace=replace)
    return data


def results_from_docs(
    docs: Iterable[ImageDoc], image_ids: Sequence[int], category_ids: Mapping[str, int]
) -> list[dict[str, Any]]:
    """COCO results (detections) list for `COCO.loadRes`: one RLE entry per annotation with area,
    score 1.0 when the annotation has none. Labels unknown to `category_ids` are skipped."""
    results: list[dict[str, Any]] = []
    for doc, image_id in zip(docs, image_ids, strict=True):
        for ann in doc.annotations:
            if not ann.has_area or ann.label not in category_ids:
                continue
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[ann.label]),
                    "segmentation": annotation_to_rle(ann, int(doc.height), int(doc.width)),
                    "score": float(ann.score) if ann.score is not None else 1.0,
                }
            )
    return results
