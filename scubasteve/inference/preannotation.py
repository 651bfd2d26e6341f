"""Pre-annotation as a workflow, without Qt: one policy for every way of running it.

Whatever runs the network (the desktop window, `scubasteve annotate`, `scubasteve annotate --ray`),
the shapes a machine made reach the LabelMe files through this module, so they are treated alike:

* every machine-made shape carries the `needs_review` flag (ADR 0505) until a person accepts it;
  COCO export, training from a project and the image list's "done" count ignore flagged shapes;
* a folder run skips images that already have a file (a rerun resumes; hand-made files are never
  touched) unless `overwrite`, which replaces only the shapes an earlier run made and a person has
  not accepted yet (ADR 0405);
* files are written atomically, and an output folder that cannot be written is refused before any
  image is processed.

`annotate_folder` runs a folder here (`scubasteve annotate`); `ray_annotate` runs it on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scubasteve.core.annotation import REVIEW_FLAG, Annotation, ImageDoc
from scubasteve.core.errors import InputError
from scubasteve.core.project import Project
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.maskrcnn.instances import SOURCE, Instance

if TYPE_CHECKING:
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

#: Top-level LabelMe key recording that (and how) a file was pre-annotated.
RUN_KEY = "scubasteve_preannotation"


def mark_for_review(annotations: Sequence[Annotation]) -> list[Annotation]:
    """The policy: machine-made shapes wait for a person's review (Y accepts, N rejects)."""
    return [dataclasses.replace(a, flags={**a.flags, REVIEW_FLAG: True}) for a in annotations]


def is_unreviewed_preannotation(annotation: Annotation) -> bool:
    """A shape an earlier pre-annotation made and nobody has accepted yet."""
    return annotation.source == SOURCE and bool(annotation.flags.get(REVIEW_FLAG))


@dataclass
class AnnotateSummary:
    """What a folder run did, image by image."""

    written: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)  # pre-annotated by an earlier run
    kept: list[Path] = field(default_factory=list)  # had annotation files of their own
    failed: list[tuple[Path | str, str]] = field(default_factory=list)  # str: an image's URI
    labels: Counter[str] = field(default_factory=Counter)
    refined: int = 0
    alternatives: int = 0
    seconds: float = 0.0
    stopped: str = ""  # why a run ended before its last image (the files written stay)

    def lines(self, device: str) -> list[str]:
        n = len(self.written)
        per_image = f" ({self.seconds / n:.2f} s/image)" if n else ""
        counts = ", ".join(f"{label} {count}" for label, count in self.labels.most_common())
        out = [
            f"pre-annotated {n} image(s) with {sum(self.labels.values())} instance(s)"
            f"{': ' + counts if counts else ''} in {self.seconds:.1f} s{per_image}; {device}"
        ]
        if self.refined:
            out.append(
                f"refined masks taken for {self.refined} instance(s) (PixelLib's kept as alternatives)"
            )
        elif self.alternatives:
            out.append(
                f"refined masks stored as alternatives for {self.alternatives} instance(s) "
                "(PixelLib's masks are the outlines; --prefer refined takes them instead)"
            )
        if self.resumed or self.kept:
            out.append(
                f"skipped {len(self.resumed)} already pre-annotated and {len(self.kept)} with "
                "annotation files of their own (use --overwrite to redo them)"
            )
        if self.failed:
            out.append(f"failed {len(self.failed)}:")
            out.extend(f"  {path}: {reason}" for path, reason in self.failed)
        if self.stopped:
            out.append(self.stopped)
        return out

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
    from scubasteve.io.atomic import read_json

    try:
        data = read_json(json_path)
    except InputError:
        return "theirs"
    return "ours" if isinstance(data, dict) and RUN_KEY in data else "theirs"


def plan_folder(
    project: Project, summary: AnnotateSummary, overwrite: bool
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


def base_document(image: Path, json_path: Path, size: tuple[int, int], overwrite: bool) -> ImageDoc:
    """The document to write: a fresh one, or (with `overwrite`) the existing file minus the
    unreviewed shapes an earlier pre-annotation made (accepted ones are a person's now)."""
    from scubasteve.io.labelme import read_labelme

    width, height = size
    if overwrite and json_path.exists():
        doc = read_labelme(json_path)
        doc.annotations = [a for a in doc.annotations if not is_unreviewed_preannotation(a)]
        doc.path, doc.width, doc.height = image, width, height
        return doc
    return ImageDoc(path=image, width=width, height=height)


def write_preannotation(
    image: Path,
    json_path: Path,
    result: ImageResult,
    *,
    overwrite: bool,
    run_info: dict[str, Any] | None,
) -> None:
    """Write one image's pre-annotation file (folder runs): the policy applied, atomically."""
    from scubasteve.io.labelme import write_labelme

    doc = base_document(image, json_path, result.size, overwrite)
    doc.annotations.extend(mark_for_review(result.annotations))
    doc.extra[RUN_KEY] = {
        **(run_info or {}),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_labelme(doc, json_path)


def merge_into_file(image: Path, json_path: Path, found: list[Annotation]) -> int:
    """Append `found` (marked for review) to the image's LabelMe file, created if missing; a file
    that cannot be read raises `InputError` and is left alone. Returns how many were added."""
    from scubasteve.io.images import read_image_size
    from scubasteve.io.labelme import read_labelme, write_labelme

    if json_path.is_file():
        doc = read_labelme(json_path)
        doc.path = image
    else:
        w, h = read_image_size(image)
        doc = ImageDoc(path=image, width=w, height=h)
    doc.annotations.extend(mark_for_review(found))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_labelme(doc, json_path)
    return len(found)


# --- a folder, run here ---------------------------------------------------------------------------


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


def _start(image: Path, segmenter: InstanceSegmenter) -> tuple[Any, Any]:
    """Load an image and queue its detection: (pixels, Future), or (None, InputError)."""
    from scubasteve.io.images import load_image

    try:
        rgb = load_image(image)
        return rgb, segmenter.detect_async(rgb)
    except InputError as exc:
        return None, exc


def annotate_folder(
    project: Project,
    segmenter: InstanceSegmenter,
    *,
    refiner: MaskProposer | None = None,
    prefer: str = "pixellib",
    overwrite: bool = False,
    run_info: dict[str, Any] | None = None,
    progress: bool = True,
) -> AnnotateSummary:
    """Pre-annotate every image of `project`; see the module docstring for what is skipped.

    The next image's detection is queued on the TensorFlow thread before the current image's masks
    are refined, outlined and written, so the network rarely waits for that work.
    """
    from tqdm import tqdm

    summary = AnnotateSummary()
    started = time.perf_counter()
    todo = plan_folder(project, summary, overwrite)
    bar = tqdm(
        total=len(todo),
        desc="annotating",
        unit="image",
        disable=not progress or None,
        file=sys.stderr,
    )
    pending = _start(todo[0][0], segmenter) if todo else None
    for index, (image, json_path) in enumerate(todo):
        rgb, job = pending  # type: ignore[misc]
        pending = _start(todo[index + 1][0], segmenter) if index + 1 < len(todo) else None
        bar.update(1)
        try:
            if rgb is None:
                raise job
            result = image_result(rgb, job.result(), refiner, prefer)
            write_preannotation(image, json_path, result, overwrite=overwrite, run_info=run_info)
        except InputError as exc:
            summary.failed.append((image, exc.problem))
            continue
        summary.add(image, result)
        bar.set_postfix(instances=len(result.annotations))
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
