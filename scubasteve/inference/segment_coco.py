"""Boxes to masks for a COCO file: its annotations with a bbox and no segmentation (ADR 0408).

Two outputs, chosen by `out`:

- **LabelMe files** (`out` a folder): the COCO file is converted as `scubasteve convert` does (a
  file that is already there is kept, never replaced), then each file's rectangles (the box-only
  annotations) are segmented as in a LabelMe folder (`segment.segment_files`): for review in the
  window, then `scubasteve convert` back to COCO.
- **A COCO file** (`out` ending in .json): a copy of the input in which each box-only annotation
  gets the mask's `segmentation` and `area`; everything else stays as it was (ids, categories,
  the user's `bbox`, keys of their own), and the annotation's `scubasteve` record says where the
  mask came from and that no person reviewed it (`needs_review`; `from_box` marks the masks this
  command made, which `overwrite` redoes). A rerun continues from the output file, which is
  written atomically after the last image and every `CHECKPOINT_S` seconds in between, so an
  interrupted run loses at most that much. The input file is never written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import REVIEW_FLAG, Annotation, ImageDoc
from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box, Polygon
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.segment import (
    RUN_KEY,
    BoxProgress,
    Job,
    Progress,
    SegmentOptions,
    SegmentSummary,
    count_made,
    describe,
    image_pixels,
    run_record,
    segment_doc,
    segment_files,
)
from scubasteve.io.coco_checks import int_id

#: Seconds between two writes of a COCO output file during a run.
CHECKPOINT_S = 30.0
#: The `scubasteve` record's key marking a mask this command made from the annotation's bbox.
FROM_BOX = "from_box"


def segment_coco(
    coco_path: Path,
    engine: MaskProposer,
    out: Path,
    *,
    images: Path | None = None,
    options: SegmentOptions | None = None,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> SegmentSummary:
    """Segment the box-only annotations of `coco_path` into `out` (module docstring). `images`:
    the image folder (default: as `read_coco` finds it). Raises `InputError` when the file cannot
    be read or `out` cannot be used."""
    options = options or SegmentOptions()
    if out.suffix.lower() == ".json":
        return _to_coco(coco_path, engine, out, images, options, cancel, progress)
    return _to_labelme(coco_path, engine, out, images, options, cancel, progress)


def _to_labelme(
    coco_path: Path,
    engine: MaskProposer,
    out: Path,
    images: Path | None,
    options: SegmentOptions,
    cancel: CancelToken | None,
    progress: Progress | None,
) -> SegmentSummary:
    from scubasteve.io.dataset import coco_to_labelme

    summary = SegmentSummary()
    report = coco_to_labelme(coco_path, out, images, overwrite=False)
    kept = set(report.skipped)  # files an earlier run wrote (or left): continued, not replaced
    summary.problems.extend(p for p in report.problems if p.path not in kept)
    targets = [*report.written, *report.skipped]
    pairs = [(t, t) for t in sorted(targets, key=str)]
    return segment_files(
        pairs, engine, options=options, summary=summary, cancel=cancel, progress=progress
    )


def _to_coco(
    coco_path: Path,
    engine: MaskProposer,
    out: Path,
    images: Path | None,
    options: SegmentOptions,
    cancel: CancelToken | None,
    progress: Progress | None,
) -> SegmentSummary:
    from scubasteve.io.coco import read_coco
    from scubasteve.io.json_files import read_json

    if out.exists() and out.resolve() == coco_path.resolve():
        raise InputError("is the input file; give another --out (the input is never written)", out)
    summary = SegmentSummary()
    started = time.perf_counter()
    dataset = read_coco(coco_path, images, summary.problems)
    data = read_json(out if out.is_file() else coco_path)
    if out.is_file() and not (isinstance(data, dict) and RUN_KEY in data):
        raise InputError("exists and was not written by scubasteve segment; kept", out)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError("not a COCO instances file: no 'annotations' list", coco_path)
    docs = dict(zip(dataset.image_ids, dataset.docs, strict=True))
    entries = data["annotations"]
    by_image = _jobs(entries, docs, dataset.category_names, options, summary, coco_path.name)
    bar = BoxProgress(sum(len(jobs) for _, jobs in by_image.values()), progress)
    last_write, pending = time.monotonic(), 0
    for image_id, (doc, jobs) in by_image.items():
        if summary.stopped:
            break
        end = bar.done + len(jobs)
        try:
            rgb = image_pixels(doc)
            engine.set_image(rgb)
            made = segment_doc(
                doc, jobs, rgb, engine, options, summary, str(coco_path), cancel=cancel,
                on_box=bar.step, where=lambda job: _where(coco_path, entries, job),
            )  # fmt: skip
            _fill(entries, doc, jobs)
        except Exception as exc:  # one image's failure is that image's problem
            summary.failed.append((f"{doc.path} (image id {image_id})", describe(exc)))
            made = []
        count_made(summary, made)
        pending += len(made)
        if not summary.stopped:
            bar.reach(end)
        if pending and time.monotonic() - last_write > CHECKPOINT_S:
            _write(out, data, options, summary)
            last_write, pending = time.monotonic(), 0
    if pending:
        _write(out, data, options, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _jobs(
    entries: list[Any],
    docs: Mapping[int, ImageDoc],
    labels: Mapping[int, str],
    options: SegmentOptions,
    summary: SegmentSummary,
    name: str,
) -> dict[int, tuple[ImageDoc, list[Job]]]:
    """The box-only annotations (and with `overwrite` the masks this command made) grouped by
    image: a document of rectangles whose ids are the entries' indices. Problems are recorded."""
    found: dict[int, tuple[ImageDoc, list[Job]]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue  # reported by read_coco
        meta = entry.get("scubasteve")
        ours = isinstance(meta, dict) and meta.get(FROM_BOX) is True
        segmented = entry.get("segmentation") not in (None, [])
        if segmented and not (ours and options.overwrite):
            summary.done_before += int(ours)
            continue
        where = f"{name}: annotations[{i}]"
        try:
            image_id, category_id = int_id(entry.get("image_id")), int_id(entry.get("category_id"))
            doc = docs.get(image_id) if image_id is not None else None
            label = labels.get(category_id) if category_id is not None else None
            if image_id is None or doc is None:
                raise ValueError(
                    f"its image_id {entry.get('image_id')!r} is not among the images read"
                )
            if label is None:
                raise ValueError(f"its category_id {entry.get('category_id')!r} is unknown")
            rectangle = _rectangle(entry.get("bbox"), label, str(i))
        except ValueError as exc:
            summary.failed.append((where, str(exc)))
            continue
        if image_id not in found:
            found[image_id] = (ImageDoc(doc.path, doc.width, doc.height, loader=doc.loader), [])
        image_doc, jobs = found[image_id]
        jobs.append(Job(len(image_doc.annotations), rectangle))
        image_doc.annotations.append(rectangle)
    if not found and not summary.done_before:
        summary.without_boxes += 1
    return found


def _where(coco_path: Path, entries: list[Any], job: Job) -> str:
    index = int(job.rectangle.id)
    ann_id = entries[index].get("id")
    return f"{coco_path.name}: annotations[{index}] (id {ann_id}, {job.rectangle.label})"


def _rectangle(bbox: Any, label: str, ann_id: str) -> Annotation:
    """A rectangle annotation of a COCO bbox [x, y, w, h] (ValueError for a bad one)."""
    numbers = isinstance(bbox, list) and len(bbox) == 4
    if not numbers or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox
    ):
        raise ValueError(f"its bbox must be four numbers [x, y, width, height], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        raise ValueError(f"its bbox {bbox!r} has no area")
    box = Box.from_xywh(x, y, w, h)
    corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    return Annotation(
        label, (Polygon(corners),), shape_type="rectangle",
        points=np.array([[box.x0, box.y0], [box.x1, box.y1]]), id=ann_id, source="imported",
    )  # fmt: skip


def _fill(entries: list[Any], doc: ImageDoc, jobs: list[Job]) -> None:
    """Write the masks made for `jobs` into their COCO entries (segmentation, area, record)."""
    from scubasteve.io.coco import mask_fields

    for job in jobs:
        made = doc.annotations[job.index]
        if made.shape_type == "rectangle":
            continue  # not made (its failure is recorded)
        fields = mask_fields(made, doc.height, doc.width)
        if fields is None:
            continue
        entry = entries[int(made.id)]
        record = entry.get("scubasteve") if isinstance(entry.get("scubasteve"), dict) else {}
        entry["segmentation"], entry["area"] = fields["segmentation"], fields["area"]
        entry["scubasteve"] = {
            **record, "source": made.source, "score": made.score, REVIEW_FLAG: True,
            FROM_BOX: True,
        }  # fmt: skip


def _write(
    out: Path, data: dict[str, Any], options: SegmentOptions, summary: SegmentSummary
) -> None:
    from scubasteve.core.atomic import atomic_write_json

    data[RUN_KEY] = run_record(options)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, data, indent=None)
    if out not in summary.written:
        summary.written.append(out)
