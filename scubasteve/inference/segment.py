"""Boxes to masks in batch (`scubasteve segment`): the rectangles users already have become the
engine's top proposal, each standing in for its rectangle until a person reviews it (ADR 0408).

One policy for LabelMe folders and COCO files alike:

* each rectangle (a LabelMe `rectangle` shape, or a COCO annotation with a bbox and no
  segmentation) is proposed as the window proposes a dragged box (`K` proposals, the top one kept)
  and outlined with the window's default tolerance; the mask keeps the rectangle's label, id,
  description and flags and is flagged for review (ADR 0505), and the rectangle's corners stay in
  the shape (`Annotation.standing_in_for`): rejecting it in the window (N) gives the rectangle back,
  accepting it (Y) makes it a person's shape;
* a rerun resumes: a replaced rectangle is no rectangle any more; `overwrite` redoes the shapes
  that still await review (from the rectangle they keep), never a shape a person accepted;
* locked rectangles stay as they are; a box outside its image, an image or a file that cannot be
  read is that item's problem: the rest goes on and the summary names each;
* every file is written atomically, once per image after its boxes, and not when it changed on
  disk while its boxes were computed (the window may have saved it meanwhile).

`segment_labelme` runs a folder of LabelMe files (here); `segment_coco` a COCO file
(`segment_coco.py`). Both take `cancel=` (stop after the current box; what is done is written) and
`progress=` (`progress(done, total)` in boxes); progress bars and summary text are the caller's.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import REPLACES_KEY, Annotation, ImageDoc
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.geometry import DEFAULT_TOLERANCE
from scubasteve.core.settings import Settings
from scubasteve.inference.base import MaskProposer, validate_box

#: Proposals asked for per box, as the window asks for a dragged box; the top one is kept.
K = 10
#: Top-level key of a file this command wrote: the engine and the date of the run.
RUN_KEY = "scubasteve_segment"

#: `progress(done, total)`: `done` boxes of `total` are finished.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SegmentOptions:
    """How masks are made and what is redone. `tolerance` and `min_island` (px, px²) outline the
    mask as the window outlines an accepted proposal (its defaults); `run_info` is recorded in
    each file written (`RUN_KEY`)."""

    overwrite: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    min_island: float = Settings().min_island_area
    run_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SegmentSummary:
    """What a run did. `failed`: (where, why) per box or file that could not be done."""

    segmented: int = 0
    done_before: int = 0  # shapes an earlier run made that still await review (skipped)
    locked: int = 0
    written: list[Path] = field(default_factory=list)
    without_boxes: int = 0  # files (or images) with no rectangle to do
    failed: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the input's own problems (read on)
    labels: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stopped: bool = False  # cancelled: what was done is written, a rerun continues


@dataclass(frozen=True)
class Job:
    """One rectangle of a document: its index in `doc.annotations` and the rectangle to segment
    (for a redone shape, the rectangle it keeps)."""

    index: int
    rectangle: Annotation


def run_record(options: SegmentOptions) -> dict[str, Any]:
    """The `RUN_KEY` value of a file written now."""
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {**options.run_info, "date": date}


def jobs_of(doc: ImageDoc, overwrite: bool, summary: SegmentSummary | None = None) -> list[Job]:
    """The rectangles of `doc` to segment; counts the skipped ones (done before, locked)."""
    jobs: list[Job] = []
    for index, ann in enumerate(doc.annotations):
        if ann.shape_type == "rectangle" and ann.has_area:
            if ann.locked:
                if summary is not None:
                    summary.locked += 1
                continue
            jobs.append(Job(index, ann))
        elif ann.needs_review and REPLACES_KEY in ann.extra:
            rectangle = ann.rejected() if overwrite else None
            if rectangle is not None:
                jobs.append(Job(index, rectangle))
            elif summary is not None:
                summary.done_before += 1
    return jobs


def add_skipped(summary: SegmentSummary, skipped: SegmentSummary) -> None:
    """Count a file (or image) with nothing to do: its skipped shapes, or that it has none."""
    summary.done_before += skipped.done_before
    summary.locked += skipped.locked
    if not skipped.done_before and not skipped.locked:
        summary.without_boxes += 1


def describe(exc: BaseException) -> str:
    """Why one item failed: an `InputError`'s problem, else the exception."""
    if isinstance(exc, InputError):
        return exc.problem
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _where(name: str, job: Job) -> str:
    box = job.rectangle.bounds()
    at = f" at {box.x0:g},{box.y0:g},{box.x1:g},{box.y1:g}" if box is not None else ""
    return f"{name}: rectangle {job.index + 1} ({job.rectangle.label}){at}"


def mask_for(
    rectangle: Annotation,
    rgb: np.ndarray,
    engine: MaskProposer,
    options: SegmentOptions,
    cancel: CancelToken | None = None,
) -> Annotation:
    """The engine's top proposal for `rectangle`'s box, outlined, standing in for the rectangle.

    `rgb`: the (H, W, 3) uint8 image, already given to `engine.set_image`. Raises ValueError (a
    box outside the image, no proposal, a mask too small to outline), `Cancelled`, or whatever
    the engine raises.
    """
    box = rectangle.bounds()
    if box is None:
        raise ValueError("the rectangle has no corners")
    height, width = rgb.shape[:2]
    inside = validate_box(box, width, height)
    proposals = engine.propose(inside, k=K, cancel=cancel)
    if not proposals:
        raise ValueError("the engine found no mask in the box")
    top = proposals[0]
    polygons = top.patch.to_polygons(options.tolerance, options.min_island)
    if not polygons:  # a small object: keep its only part even below the speck size
        polygons = top.patch.to_polygons(options.tolerance, 0.0)
    if not polygons:
        raise ValueError("the engine's mask is empty")
    made = Annotation(
        rectangle.label, tuple(polygons), score=top.quality, source=top.source,
        description=rectangle.description,
    )  # fmt: skip
    return made.standing_in_for(rectangle)


def segment_doc(
    doc: ImageDoc,
    jobs: Sequence[Job],
    rgb: np.ndarray,
    engine: MaskProposer,
    options: SegmentOptions,
    summary: SegmentSummary,
    name: str,
    *,
    cancel: CancelToken | None = None,
    on_box: Callable[[], None] | None = None,
    where: Callable[[Job], str] | None = None,
) -> list[str]:
    """Replace each job's shape in `doc` by its mask (`mask_for`); returns the labels of the masks
    made (the caller counts them once they are written).

    `rgb` must already be the engine's image. A box that fails is recorded in `summary.failed`
    (`where(job)` names it; default: `name` and the rectangle's place) and stays as it was. Stops
    when `cancel` is set (`summary.stopped`), keeping what was made.
    """
    made: list[str] = []
    for job in jobs:
        if cancel is not None and cancel.cancelled:
            summary.stopped = True
            break
        try:
            doc.annotations[job.index] = mask_for(job.rectangle, rgb, engine, options, cancel)
        except Cancelled:
            summary.stopped = True
            break
        except Exception as exc:  # one box's failure is that box's problem
            summary.failed.append((where(job) if where else _where(name, job), describe(exc)))
        else:
            made.append(job.rectangle.label)
        if on_box is not None:
            on_box()
    return made


def count_made(summary: SegmentSummary, labels: Sequence[str]) -> None:
    """Record masks that were written."""
    summary.segmented += len(labels)
    summary.labels.update(labels)


class BoxProgress:
    """Counts boxes for a `Progress` callback: `step()` after each box, `reach(n)` to move on."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._progress = total, 0, progress

    def step(self) -> None:
        self.reach(self.done + 1)

    def reach(self, done: int) -> None:
        done = min(done, self.total)
        if done > self.done:
            self.done = done
            if self._progress is not None:
                self._progress(done, self.total)


def image_pixels(doc: ImageDoc) -> np.ndarray:
    """The document's image, checked against the size the document gives (InputError)."""
    rgb = doc.pixels()
    if rgb.shape[:2] != (doc.height, doc.width):
        raise InputError(
            f"the image is {rgb.shape[1]}x{rgb.shape[0]} but its annotations are for "
            f"{doc.width}x{doc.height}; nothing was segmented",
            doc.path,
        )
    return rgb


# --- LabelMe files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    source: Path  # the LabelMe file read
    target: Path  # the LabelMe file written (the source itself unless an output folder is given)
    boxes: int


def _signature(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def labelme_pairs(folder: Path, out: Path | None, recursive: bool) -> list[tuple[Path, Path]]:
    """(file to read, file to write) for each LabelMe file of `folder`: the file itself, or with
    `out` the same relative path there, read from there when an earlier run wrote it. Raises
    `InputError` when the folder has none."""
    from scubasteve.io.dataset import labelme_files

    files = [f for f in labelme_files(folder, recursive) if out is None or not _inside(f, out)]
    if not files:
        raise InputError("no LabelMe files (.json) here; nothing to segment", folder)
    pairs = []
    for source in files:
        target = source if out is None else out / source.relative_to(folder)
        pairs.append((target if target.is_file() else source, target))
    return pairs


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


def _plan(
    pairs: Sequence[tuple[Path, Path]], overwrite: bool, summary: SegmentSummary
) -> list[_Planned]:
    from scubasteve.io.dataset import is_labelme_file
    from scubasteve.io.labelme import read_labelme

    planned: list[_Planned] = []
    for source, target in pairs:
        if not is_labelme_file(source):
            summary.problems.append(Problem("a COCO file, not LabelMe; skipped", source))
            continue
        try:
            doc = read_labelme(source, summary.problems)  # shapes it cannot read are named there
        except InputError as exc:
            summary.failed.append((str(source), exc.problem))
            continue
        skipped = SegmentSummary()
        boxes = len(jobs_of(doc, overwrite, skipped))
        if boxes:  # the skipped ones are counted when the file is done
            planned.append(_Planned(source, target, boxes))
        else:
            add_skipped(summary, skipped)
    return planned


def segment_labelme(
    folder: Path,
    engine: MaskProposer,
    *,
    out: Path | None = None,
    recursive: bool = False,
    options: SegmentOptions | None = None,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> SegmentSummary:
    """Segment the rectangles of every LabelMe file in `folder` (see the module docstring).

    Files are changed in place, or written under `out` (same relative paths; the image paths in
    them point at the images), where a file an earlier run wrote is continued. Raises
    `InputError` when the folder has no LabelMe files.
    """
    pairs = labelme_pairs(folder, out, recursive)
    return segment_files(pairs, engine, options=options, cancel=cancel, progress=progress)


def segment_files(
    pairs: Sequence[tuple[Path, Path]],
    engine: MaskProposer,
    *,
    options: SegmentOptions | None = None,
    summary: SegmentSummary | None = None,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> SegmentSummary:
    """Segment the rectangles of LabelMe files: each (file read, file written) of `pairs`."""
    options = options or SegmentOptions()
    summary = summary or SegmentSummary()
    started = time.perf_counter()
    planned = _plan(pairs, options.overwrite, summary)
    bar = BoxProgress(sum(p.boxes for p in planned), progress)
    for item in planned:
        if summary.stopped:
            break
        end = bar.done + item.boxes
        try:
            _segment_file(item, engine, options, summary, cancel, bar.step)
        except Exception as exc:  # one file's failure is that file's problem
            summary.failed.append((str(item.target), describe(exc)))
        if not summary.stopped:
            bar.reach(end)  # boxes a failed file never tried count as done
    summary.seconds = time.perf_counter() - started
    return summary


def _segment_file(
    item: _Planned,
    engine: MaskProposer,
    options: SegmentOptions,
    summary: SegmentSummary,
    cancel: CancelToken | None,
    on_box: Callable[[], None],
) -> None:
    from scubasteve.io.labelme import read_labelme, write_labelme

    signature = _signature(item.source)
    doc = read_labelme(item.source)  # its problems were reported when the run was planned
    jobs = jobs_of(doc, options.overwrite, summary)
    rgb = image_pixels(doc)
    engine.set_image(rgb)
    name = str(item.target)
    made = segment_doc(doc, jobs, rgb, engine, options, summary, name, cancel=cancel, on_box=on_box)
    if not made:
        return
    if _signature(item.source) != signature:
        raise InputError("changed on disk while its boxes were segmented; kept, run again")
    doc.extra[RUN_KEY] = run_record(options)
    item.target.parent.mkdir(parents=True, exist_ok=True)
    write_labelme(doc, item.target)
    summary.written.append(item.target)
    count_made(summary, made)
