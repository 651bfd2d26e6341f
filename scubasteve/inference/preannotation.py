"""Pre-annotation as a workflow, without Qt: one loop and one policy for every way of running it.

Whatever runs the network (the desktop window, `scubasteve annotate`, `scubasteve annotate --ray`),
the shapes a machine made reach the LabelMe files through this module, so they are treated alike:

* every machine-made shape carries the `needs_review` flag (ADR 0505) until a person accepts it;
  COCO export, training from a project and the image list's "done" ignore flagged shapes;
* every file it writes carries the run record `RUN_KEY` (model, settings, date), so a later run
  tells "pre-annotated before" from "annotated by a person";
* a folder run skips images that already have a file (a rerun resumes; hand-made files are never
  touched) unless `overwrite`; a file that is written keeps every shape except the unreviewed ones
  an earlier run made, which the new ones replace (ADR 0405);
* files are written atomically, and an output folder that cannot be written is refused before any
  image is processed;
* an image much larger than the network's input is detected in overlapping tiles plus the whole
  image shrunk (`maskrcnn/tiling.py`, ADR 0409), one view at a time: progress per view, and a
  cancel stops between views.

`annotate_images` is the loop (the window runs it through `gui.workers.submit_job`);
`annotate_folder` plans a folder and runs it (`scubasteve annotate`); `ray_annotate` runs the plan
on a Ray cluster and writes through `finish_image` too. Each takes `cancel=`, `progress=` (done,
total) and `on_image=` (an `ImageOutcome` per image); progress bars and summary text are the
caller's.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.core.progress import Progress
from scubasteve.core.project import Project
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.maskrcnn.instances import SOURCE, Instance
from scubasteve.inference.maskrcnn.tiling import AUTO, TileSetting, detect_views, plan_views

#: Top-level LabelMe key recording that (and how) a file was pre-annotated.
RUN_KEY = "scubasteve_preannotation"


class ImageFolder(Protocol):
    """What a run plans from: a `core.project.Project` or a `remote_images.RemoteFolder`."""

    @property
    def images(self) -> list[Path]: ...

    def annotation_path(self, image: Path) -> Path: ...


class Detector(Protocol):
    """What a run needs of the segmenter (`maskrcnn.segmenter.InstanceSegmenter`)."""

    path: Path  # the model file
    speed: int
    min_score: float
    classes: Any  # a collection of label names, or None for all

    def detect_async(
        self, rgb: np.ndarray, size: tuple[int, int] | None = None
    ) -> Future[list[Instance]]:
        """Queue the detection of one (H, W, 3) uint8 RGB image on the segmenter's own thread
        (`size`: the (height, width) of the image `rgb` is a resized copy of, for tiling)."""
        ...


def mark_for_review(annotations: Sequence[Annotation]) -> list[Annotation]:
    """The policy: machine-made shapes wait for a person's review (Y accepts, N rejects)."""
    return [a.for_review() for a in annotations]


def is_unreviewed_preannotation(annotation: Annotation) -> bool:
    """A shape an earlier pre-annotation made and nobody has accepted yet."""
    return annotation.source == SOURCE and annotation.needs_review


def run_info(
    segmenter: Detector,
    model: str | None = None,
    refiner: str | None = None,
    prefer: str = "pixellib",
    tile: TileSetting = AUTO,
) -> dict[str, Any]:
    """What a run records in each file under `RUN_KEY` (the date is added when it is written).
    `model`: the name the user gave (default: the segmenter's file)."""
    return {
        "model": str(model or segmenter.path),
        "speed": segmenter.speed,
        "min_score": segmenter.min_score,
        "classes": sorted(segmenter.classes) if segmenter.classes else None,
        "refiner": refiner,
        "prefer": prefer if refiner else None,
        "tile": tile,
    }


def run_record(info: dict[str, Any] | None) -> dict[str, Any]:
    """The `RUN_KEY` value of a file written now."""
    return {**(info or {}), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass
class AnnotateSummary:
    """What a folder run did, image by image."""

    written: list[Path] = field(default_factory=list)  # pre-annotated (written, or held open)
    resumed: list[Path] = field(default_factory=list)  # pre-annotated by an earlier run
    kept: list[Path] = field(default_factory=list)  # had annotation files of their own
    failed: list[tuple[Path | str, str]] = field(default_factory=list)  # str: an image's URI
    labels: Counter[str] = field(default_factory=Counter)
    refined: int = 0
    alternatives: int = 0
    seconds: float = 0.0
    stopped: str = ""  # why a run ended before its last image (the files written stay)

    def add(self, image: Path, result: ImageResult) -> None:
        self.written.append(image)
        self.labels.update(a.label for a in result.annotations)
        self.refined += result.refined
        self.alternatives += result.alternatives


@dataclass
class ImageResult:
    """One image's pre-annotation before it is written: shapes, image size and refinement counts.

    Plain data (picklable), so a Ray actor can compute it and the driver write it.
    """

    annotations: list[Annotation]
    size: tuple[int, int]  # width, height
    refined: int = 0
    alternatives: int = 0


@dataclass(frozen=True, eq=False)
class ImageOutcome:
    """One image of a run, as `on_image` gets it.

    Written: `doc` is the document as written. Held (the caller keeps the image open): `result`
    without `doc`; the caller adds `changes(doc, result)` and `record` to its own document.
    Failed: `problem`.
    """

    image: Path
    json_path: Path
    result: ImageResult | None = None
    doc: ImageDoc | None = None
    problem: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # the run's `RUN_KEY` value


ImageCallback = Callable[[ImageOutcome], None]


def image_result(
    rgb: np.ndarray,
    instances: Sequence[Instance],
    refiner: MaskProposer | None = None,
    prefer: str = "pixellib",
) -> ImageResult:
    """Refine `instances` (if a refiner is given) and turn them into annotations."""
    from scubasteve.inference.maskrcnn.refine import preferred, refine_instances

    if refiner is not None:
        instances = refine_instances(rgb, list(instances), refiner)
    choices = [
        preferred(inst) if refiner is not None and prefer == "refined" else "pixellib"
        for inst in instances
    ]
    return ImageResult(
        [inst.annotation(c) for inst, c in zip(instances, choices, strict=True)],
        (int(rgb.shape[1]), int(rgb.shape[0])),
        refined=choices.count("refined"),
        alternatives=sum(inst.refined is not None for inst in instances),
    )


def existing_state(json_path: Path) -> str:
    """ "none", "ours" (a previous pre-annotation run) or "theirs" (any other annotation file)."""
    if not json_path.exists():
        return "none"
    from scubasteve.io.json_files import read_json

    try:
        data = read_json(json_path)
    except InputError:
        return "theirs"
    return "ours" if isinstance(data, dict) and RUN_KEY in data else "theirs"


def plan_folder(
    project: ImageFolder, summary: AnnotateSummary, overwrite: bool
) -> list[tuple[Path, Path]]:
    """(image, json path) pairs to do; the skipped ones are recorded in `summary`.

    Raises `InputError` when an output folder cannot be written, before anything runs.
    """
    todo: list[tuple[Path, Path]] = []
    for image in project.images:
        json_path = project.annotation_path(image)
        state = existing_state(json_path)
        if state != "none" and not overwrite:
            (summary.resumed if state == "ours" else summary.kept).append(image)
        else:
            todo.append((image, json_path))
    check_writable({json_path.parent for _, json_path in todo})
    return todo


def check_writable(folders: Iterable[Path]) -> None:
    """Create each folder if needed and prove a file can be made there (InputError names it)."""
    for folder in sorted(set(folders)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".scubasteve-write-check.", dir=folder)
        except OSError as exc:
            reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
            raise InputError(
                f"cannot write annotation files here ({reason}); nothing was annotated", folder
            ) from exc
        os.close(fd)
        os.unlink(name)


def changes(doc: ImageDoc, result: ImageResult) -> tuple[list[str], list[Annotation]]:
    """What a run does to an image's document: (ids of the unreviewed shapes an earlier run made,
    which go; the new shapes, marked for review, which are added). Accepted and hand-made shapes
    stay (ADR 0405)."""
    stale = [a.id for a in doc.annotations if is_unreviewed_preannotation(a)]
    return stale, mark_for_review(result.annotations)


def write_preannotation(
    image: Path, json_path: Path, result: ImageResult, run_info: dict[str, Any] | None = None
) -> ImageDoc:
    """Write one image's file, the policy applied, atomically; returns the document written.

    An existing file is read and changed (`changes`); one that cannot be read raises `InputError`
    and is left alone.
    """
    from scubasteve.io.labelme import read_labelme, write_labelme

    width, height = result.size
    if json_path.is_file():
        doc = read_labelme(json_path)
        doc.path, doc.width, doc.height = image, width, height
    else:
        doc = ImageDoc(path=image, width=width, height=height)
    stale, added = changes(doc, result)
    doc.annotations = [a for a in doc.annotations if a.id not in stale] + added
    doc.extra[RUN_KEY] = run_record(run_info)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_labelme(doc, json_path)
    return doc


def finish_image(
    image: Path,
    json_path: Path,
    result: ImageResult | None,
    problem: str,
    summary: AnnotateSummary,
    *,
    run_info: dict[str, Any] | None = None,
    held: Callable[[Path], bool] | None = None,
    shown: Path | str | None = None,
) -> ImageOutcome:
    """The end of one image, whoever computed it: write its file (unless the caller holds the image
    or it failed) and record it in `summary`. `shown`: the name the summary gives a failed image
    (a URI as the user gave it)."""
    outcome = ImageOutcome(image, json_path, problem=problem or "no result")
    if result is not None and not problem:
        if held is not None and held(image):
            outcome = ImageOutcome(image, json_path, result, record=run_record(run_info))
        else:
            try:
                doc = write_preannotation(image, json_path, result, run_info)
            except InputError as exc:
                outcome = ImageOutcome(image, json_path, problem=exc.problem)
            else:
                outcome = ImageOutcome(image, json_path, result, doc, record=doc.extra[RUN_KEY])
    if outcome.problem:
        summary.failed.append((shown or image, outcome.problem))
    elif result is not None:
        summary.add(image, result)
    return outcome


def make_refiner(name: str, device: str) -> MaskProposer:
    """The mask-proposal engine that refines instance masks."""
    try:
        from scubasteve.inference.engines import create_proposer
    except ImportError as exc:
        raise InputError(
            "--refine needs the mask-proposal engines (scubasteve.inference.engines), which this "
            "installation lacks"
        ) from exc
    return create_proposer(name, device=device)


def describe_failure(exc: Exception) -> str:
    """Why one image failed, for the summary: an `InputError`'s problem, else the exception."""
    return exc.problem if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"


@dataclass
class _Queued:
    """An image whose detection is queued: its pixels and the detection's Future, or why not.
    `tiled`: the image is detected view by view when its turn comes (loaded only then: a huge
    image is not held while the one before it is worked on)."""

    rgb: np.ndarray | None = None
    detection: Future[list[Instance]] | None = None
    problem: str = ""
    tiled: bool = False

    def detected(
        self,
        image: Path,
        segmenter: Detector,
        tile: TileSetting,
        cancel: CancelToken | None,
        progress: Progress | None,
    ) -> tuple[np.ndarray, list[Instance]]:
        """The image's pixels and instances (a tiled image is loaded and detected now)."""
        if not self.tiled:
            assert self.rgb is not None and self.detection is not None
            return self.rgb, self.detection.result()
        from scubasteve.io.images import load_image

        rgb = load_image(image)
        views = plan_views(rgb.shape[1], rgb.shape[0], segmenter.speed, tile)
        return rgb, detect_views(segmenter, rgb, views, cancel=cancel, progress=progress)


def _queue(image: Path, segmenter: Detector, tile: TileSetting) -> _Queued:
    from scubasteve.io.images import load_image, read_image_size

    try:
        width, height = read_image_size(image)
        views = plan_views(width, height, segmenter.speed, tile)
        if len(views) > 1 or views[0].resized:
            return _Queued(tiled=True)
        rgb = load_image(image)
        return _Queued(rgb, segmenter.detect_async(rgb))
    except Exception as exc:  # one image's failure is that image's problem
        return _Queued(problem=describe_failure(exc))


def annotate_images(
    todo: Sequence[tuple[Path, Path]],
    segmenter: Detector,
    *,
    refiner: MaskProposer | None = None,
    prefer: str = "pixellib",
    run_info: dict[str, Any] | None = None,
    held: Callable[[Path], bool] | None = None,
    tile: TileSetting = AUTO,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
    view_progress: Progress | None = None,
    on_image: ImageCallback | None = None,
) -> AnnotateSummary:
    """Pre-annotate each (image, json path) of `todo` in order; see the module docstring.

    The next image's detection is queued on the segmenter's thread before the current image's masks
    are refined, outlined and written, so the network rarely waits for that work. After each image
    `progress(done, len(todo))` and `on_image(outcome)` are called (on this thread). `held(image)`
    (optional, must be thread-safe): the caller keeps that image open and adds its result to its
    own document, so nothing is written for it. `tile`: "auto", "off" or a tile side (see
    `maskrcnn.tiling`); a tiled image calls `view_progress(done, views)` after each of its views.
    `cancel`: the image (or view of a tiled image) being detected is finished, then `Cancelled` is
    raised; nothing is written after it. A failing image is recorded in the summary and the run
    goes on.
    """
    summary = AnnotateSummary()
    started = time.perf_counter()
    queued = _queue(todo[0][0], segmenter, tile) if todo else _Queued()
    try:
        for index, (image, json_path) in enumerate(todo):
            if index:  # between images: the first one, already queued, is always finished
                raise_if_cancelled(cancel)
            current = queued
            queued = (
                _queue(todo[index + 1][0], segmenter, tile) if index + 1 < len(todo) else _Queued()
            )
            result, problem = None, current.problem
            if not problem:
                try:
                    rgb, found = current.detected(image, segmenter, tile, cancel, view_progress)
                    result = image_result(rgb, found, refiner, prefer)
                except Cancelled:
                    raise
                except Exception as exc:  # one image's failure is that image's problem
                    problem = describe_failure(exc)
            outcome = finish_image(
                image, json_path, result, problem, summary, run_info=run_info, held=held
            )
            if progress is not None:
                progress(index + 1, len(todo))
            if on_image is not None:
                on_image(outcome)
    finally:
        if queued.detection is not None:
            queued.detection.cancel()  # a cancelled run: drop the next image if not yet started
    summary.seconds = time.perf_counter() - started
    return summary


def annotate_folder(
    project: Project,
    segmenter: Detector,
    *,
    overwrite: bool = False,
    refiner: MaskProposer | None = None,
    prefer: str = "pixellib",
    run_info: dict[str, Any] | None = None,
    tile: TileSetting = AUTO,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
    view_progress: Progress | None = None,
    on_image: ImageCallback | None = None,
) -> AnnotateSummary:
    """Plan `project` (`plan_folder`: what is skipped) and pre-annotate the rest."""
    skipped = AnnotateSummary()
    todo = plan_folder(project, skipped, overwrite)
    summary = annotate_images(
        todo, segmenter, refiner=refiner, prefer=prefer, run_info=run_info, tile=tile,
        cancel=cancel, progress=progress, view_progress=view_progress, on_image=on_image,
    )  # fmt: skip
    summary.resumed, summary.kept = skipped.resumed, skipped.kept
    return summary
