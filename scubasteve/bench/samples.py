"""Evaluation samples for the proposal benchmark: an image, a prompt box and the true mask.

Samples come from a COCO instances file (polygons or RLE) or from a folder of LabelMe JSON files,
read through the project's own readers (`scubasteve.io.coco`, `scubasteve.io.labelme`), so a bad
entry is that entry's problem with the same message `scubasteve validate` gives, and the rest is
scored. Problems go to the `problems` list given; without one, to the reporter set by
`problems_reported_to` (the `bench` commands print them and exit 1 on errors), else to the log.

Images are loaded lazily, one at a time, and optionally downscaled so that the longer side is at
most `max_side`; boxes and true masks are scaled with them. An image whose pixels are of another
size than its entry says is not scored (its `load` raises `InputError`, which the benchmark
reports). The prompt box is the true mask's box grown by `box_grow` of its size on each side,
clipped to the image, as a user's loose drag would be.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.geometry import Box, Polygon, mask_bbox, polygons_to_mask

log = logging.getLogger(__name__)


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


# --- where problems go ---------------------------------------------------------------------------

_reporter: ContextVar[Callable[[Problem], None] | None] = ContextVar(
    "sample_problem_reporter", default=None
)


@contextlib.contextmanager
def problems_reported_to(report: Callable[[Problem], None]) -> Iterator[None]:
    """Inside the block, problems found by loaders called without a `problems` list go to
    `report` as they are found (for command handlers that reach the loaders through code that
    passes none)."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


def _deliver(found: list[Problem], problems: list[Problem] | None) -> None:
    if problems is not None:
        problems.extend(found)
        return
    report = _reporter.get()
    for problem in found:
        if report is not None:
            report(problem)
        else:
            log.warning("%s", problem)


# --- building samples ----------------------------------------------------------------------------


def _scale_for(width: int, height: int, max_side: int | None) -> float:
    if max_side is None or max_side <= 0 or max(width, height) <= max_side:
        return 1.0
    return max_side / max(width, height)


def _loader(
    load: Callable[[], np.ndarray], name: str, stored: tuple[int, int], size: tuple[int, int]
) -> Callable[[], np.ndarray]:
    """`load` checked against the `stored` (width, height) and scaled to `size`."""

    def checked() -> np.ndarray:
        img = load()
        actual = (img.shape[1], img.shape[0])
        if actual != stored:
            raise InputError(
                f"the image is {actual[0]}x{actual[1]} but its annotation file says "
                f"{stored[0]}x{stored[1]}; its objects are not scored",
                name,
            )
        if actual != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return img

    return checked


def make_sample(key: str, mask: np.ndarray, box_grow: float) -> Sample | None:
    """A sample from a full-image bool mask; None when the mask is empty."""
    tight = mask_bbox(mask)
    if tight is None:
        return None
    height, width = mask.shape
    box = tight.grow(box_grow).clip(width, height)
    return Sample(key, box, MaskPatch.from_full(mask))


def _scaled_mask(ann: Annotation, stored: tuple[int, int], scale: float) -> np.ndarray:
    """The annotation's true mask at the benchmark's scale, as an (h, w) bool array."""
    w0, h0 = stored
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    if ann.mask is not None:  # RLE or a LabelMe mask shape: exact pixels, scaled as pixels
        mask = ann.mask.to_full(h0, w0)
        if scale != 1.0:
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        return mask.astype(bool)
    polygons = [
        Polygon(p.exterior * scale, tuple(hole * scale for hole in p.holes)) for p in ann.polygons
    ]
    return polygons_to_mask(polygons, h, w)


def _sample_image(
    name: str,
    doc: ImageDoc,
    objects: list[tuple[str, str, Annotation]],
    box_grow: float,
    max_side: int | None,
    found: list[Problem],
    source: Path,
) -> SampleImage | None:
    """The samples of one image: `objects` are (key, where, annotation) in file order."""
    stored = (int(doc.width), int(doc.height))
    scale = _scale_for(*stored, max_side)
    size = (max(1, round(stored[0] * scale)), max(1, round(stored[1] * scale)))
    samples = []
    for key, where, ann in objects:
        sample = make_sample(key, _scaled_mask(ann, stored, scale), box_grow)
        if sample is None:
            found.append(
                Problem(
                    f"the object covers no pixel at the benchmark's scale ({size[0]}x{size[1]}, "
                    f"max_side {max_side}); not scored",
                    source,
                    where,
                    "warning",
                )
            )
            continue
        samples.append(sample)
    if not samples:
        return None
    return SampleImage(
        name, size[0], size[1], tuple(samples), _loader(doc.pixels, name, stored, size)
    )


def _coco_area(ann: Annotation, stored: tuple[int, int]) -> int:
    return int(np.count_nonzero(_scaled_mask(ann, stored, 1.0)))


def load_coco_samples(
    coco_json: Path,
    images_dir: Path,
    *,
    box_grow: float = 0.05,
    limit: int | None = None,
    max_side: int | None = 1024,
    min_area: float = 0.0,
    image_ids: Sequence[int] | None = None,
    problems: list[Problem] | None = None,
) -> list[SampleImage]:
    """Samples for every non-crowd instance of a COCO file, grouped by image, in file order.

    Read with `read_coco`: an entry it refuses is reported (see the module docstring) and left
    out. `min_area` compares with the object's area in pixels at the file's size (the file's own
    `area` field is not trusted). An annotation with a box but no segmentation is no true mask and
    is left out with a warning. Raises `InputError` for a file that is not COCO at all.
    """
    from scubasteve.io.coco import read_coco

    found: list[Problem] = []
    try:
        dataset = read_coco(Path(coco_json), Path(images_dir), found, rle_outlines=False)
        wanted = set(image_ids) if image_ids else None
        result: list[SampleImage] = []
        remaining = limit if limit is not None else -1
        for d, doc in enumerate(dataset.docs):
            if remaining == 0:
                break
            image_id = dataset.image_ids[d]
            if wanted is not None and image_id not in wanted:
                continue
            stored = (int(doc.width), int(doc.height))
            objects = []
            for ann, ann_id in zip(doc.annotations, dataset.annotation_ids[d], strict=True):
                if remaining == 0:
                    break
                where = f"annotation id {ann_id} (image id {image_id})"
                if ann.extra.get("iscrowd"):
                    continue
                if ann.shape_type == "rectangle":
                    found.append(
                        Problem(
                            "the annotation has a bbox but no segmentation: no true mask; "
                            "not scored",
                            coco_json,
                            where,
                            "warning",
                        )
                    )
                    continue
                if min_area > 0 and _coco_area(ann, stored) < min_area:
                    continue
                objects.append((str(ann_id), where, ann))
                remaining -= 1
            name = dataset.file_names[d]
            image = _sample_image(name, doc, objects, box_grow, max_side, found, Path(coco_json))
            if image is not None:
                result.append(image)
        return result
    finally:
        _deliver(found, problems)


def load_labelme_samples(
    folder: Path,
    *,
    box_grow: float = 0.05,
    max_side: int | None = 1024,
    problems: list[Problem] | None = None,
) -> list[SampleImage]:
    """Samples for the polygon shapes of every LabelMe JSON file under `folder` (recursively).

    Read with `read_labelme`: polygons sharing a label and a non-null group_id form one object
    (nested rings are holes), as labelme itself treats them; a file or shape it refuses is
    reported and left out, and so is a COCO file in the folder. Images come from `imagePath`
    (or an image of the JSON's name beside it), else from the embedded `imageData`.
    """
    from scubasteve.io.dataset import is_labelme_file, labelme_files
    from scubasteve.io.labelme import read_labelme

    folder = Path(folder)
    found: list[Problem] = []
    try:
        result: list[SampleImage] = []
        for json_path in sorted(labelme_files(folder, recursive=True)):
            if not is_labelme_file(json_path):
                found.append(Problem("a COCO file, not LabelMe; skipped", json_path, "", "warning"))
                continue
            try:
                doc = read_labelme(json_path, found)
            except InputError as exc:
                found.append(Problem(exc.problem, exc.path or json_path, exc.where or ""))
                continue
            polygons = [a for a in doc.annotations if a.shape_type == "polygon"]
            objects = [
                (f"{json_path.stem}/{n}", f"object {n} ({ann.label})", ann)
                for n, ann in enumerate(polygons)
            ]
            name = str(json_path.relative_to(folder))
            image = _sample_image(name, doc, objects, box_grow, max_side, found, json_path)
            if image is not None:
                result.append(image)
        return result
    finally:
        _deliver(found, problems)


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
