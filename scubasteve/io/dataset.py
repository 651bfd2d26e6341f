"""Whole folders and files: LabelMe folder <-> COCO conversion and validation, with problem reports.

A bad file never stops a batch: it is reported (file and shape index) and the rest goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.atomic import AlreadyExists
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.files import name_problem, text_problem
from scubasteve.core.labels import find_labels_file, read_labels_file
from scubasteve.core.progress import Progress, counted
from scubasteve.core.project import natural_key
from scubasteve.io import images
from scubasteve.io.coco import CocoDataset, read_coco, write_coco
from scubasteve.io.json_files import read_json
from scubasteve.io.labelme import labelme_path_for, read_labelme, write_labelme


@dataclass
class Report:
    """What a batch did: counts plus every problem found."""

    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    images: int = 0
    annotations: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def labelme_files(folder: Path, recursive: bool = False) -> list[Path]:
    """JSON files in `folder` (natural order); unreadable folders raise `InputError`."""
    problem = name_problem(folder)
    if problem:
        raise InputError(f"cannot be read: {problem}", folder)
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    try:
        found = list(folder.rglob("*.json") if recursive else folder.glob("*.json"))
    except PermissionError as exc:
        raise InputError("cannot list the folder: permission denied", folder) from exc
    return sorted(
        (p for p in found if not p.name.startswith(".")), key=lambda p: natural_key(str(p))
    )


def is_labelme_file(path: Path) -> bool:
    """False for a COCO file found among LabelMe files; True for anything else (the LabelMe
    reader reports what is wrong with it)."""
    try:
        data = read_json(path)
    except InputError:
        return True  # let the reader report it
    return not (isinstance(data, dict) and "shapes" not in data and "images" in data)


def read_labelme_folder(
    folder: Path, recursive: bool = False, progress: Progress | None = None
) -> tuple[list[ImageDoc], Report]:
    """Every LabelMe file of a folder as documents; files that fail are reported and skipped."""
    report = Report()
    docs: list[ImageDoc] = []
    files = labelme_files(folder, recursive)
    for path in counted(files, progress):
        if not is_labelme_file(path):
            report.problems.append(
                Problem("a COCO file, not LabelMe; skipped", path, severity="warning")
            )
            continue
        report.files += 1
        try:
            doc = read_labelme(path, report.problems)
        except InputError as exc:
            report.problems.append(Problem(exc.problem, exc.path or path, exc.where or ""))
            continue
        docs.append(doc)
        report.annotations += len(doc.annotations)
    report.images = len(docs)
    return docs, report


def labelme_to_coco(
    folder: Path,
    out: Path,
    labels: list[str] | None = None,
    rle: bool = False,
    recursive: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Convert the annotated images of a LabelMe folder to one COCO file.

    Only images that have a LabelMe file are exported (an image without one is not known to be
    empty). Category order: `labels`, else the folder's labels.txt, else order of appearance.
    The report counts the images and annotations written, not those read.
    """
    _check_name(out)
    if out.exists() and not overwrite:
        raise InputError("exists already; use --overwrite to replace it", out)
    inputs = labelme_files(folder, recursive)
    if _same_file(out, inputs):
        raise InputError(
            "is one of the LabelMe files being converted; give another name for the COCO file", out
        )
    docs, report = read_labelme_folder(folder, recursive, progress)
    if labels is None:
        labels_file = find_labels_file(folder)
        labels = read_labels_file(labels_file) if labels_file else None
    data = write_coco(
        out,
        docs,
        categories=labels,
        root=folder,
        rle=rle,
        problems=report.problems,
        replace=overwrite,
    )
    report.written.append(out)
    # what is in the file: annotations without area or pixels were named above and left out
    report.images, report.annotations = len(data["images"]), len(data["annotations"])
    return report


def coco_to_labelme(
    coco_path: Path,
    out_dir: Path,
    images_dir: Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Write one LabelMe file per image of a COCO file into `out_dir` (image paths stay relative)."""
    report = Report()
    _check_name(out_dir)
    dataset = read_coco(coco_path, images_dir, report.problems)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder; give a folder for the LabelMe files", out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror or exc}", out_dir) from exc
    # file_name keeps its folders (a/x.jpg -> a/x.json), so images of the same name do not collide.
    claimed: dict[Path, str] = {}
    pairs = list(zip(dataset.docs, dataset.file_names, strict=True))
    for doc, file_name in counted(pairs, progress):
        target = out_dir / labelme_path_for(Path(file_name))
        problem = name_problem(target)
        if problem:
            report.problems.append(Problem(f"cannot be written: {problem}", target))
            continue
        if target in claimed:
            report.problems.append(
                Problem(
                    f"{file_name!r} and {claimed[target]!r} would both be written here; "
                    f"{file_name!r} is not written",
                    target,
                )
            )
            continue
        claimed[target] = file_name
        if _same_file(target, [coco_path]):
            report.problems.append(
                Problem(f"is the COCO file being converted; {file_name!r} is not written", target)
            )
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_labelme(doc, target, replace=overwrite)  # never replaces without --overwrite
        except AlreadyExists:
            report.skipped.append(target)
            report.problems.append(
                Problem("exists already; kept (use --overwrite)", target, severity="warning")
            )
            continue
        except InputError as exc:
            report.problems.append(Problem(exc.problem, exc.path or target))
            continue
        except OSError as exc:
            report.problems.append(Problem(f"cannot write: {exc.strerror or exc}", target))
            continue
        report.written.append(target)
        report.annotations += len(doc.annotations)
    report.images = len(dataset.docs)
    report.files = 1
    return report


def _same_file(path: Path, others: Iterable[Path]) -> bool:
    """Whether `path` is one of `others` (the same file, whatever the spelling of the path)."""
    try:
        resolved = path.resolve()
        return any(resolved == other.resolve() for other in others)
    except (OSError, RuntimeError, ValueError):  # a link loop, a name no file can have
        return False


def _check_name(path: Path) -> None:
    """`InputError` for an output path that no file system can hold (`name_problem`)."""
    problem = name_problem(path)
    if problem:
        raise InputError(f"cannot be written: {problem}", path)


def _check_image(doc: ImageDoc, report: Report, where: str) -> None:
    path = doc.path
    if not path.is_file():
        if doc.image_data:
            return
        report.problems.append(Problem("image file not found", path, where))
        return
    try:
        pixels = images.load_image(path)
    except InputError as exc:
        report.problems.append(Problem(exc.problem, path, where))
        return
    h, w = pixels.shape[:2]
    if (w, h) != (doc.width, doc.height):
        report.problems.append(
            Problem(
                f"image is {w}x{h} but the annotation says {doc.width}x{doc.height}", path, where
            )
        )
    elif doc.image_data:
        _check_embedded_picture(doc.image_data, pixels, report, path)


#: Mean absolute difference (0..255) above which `imageData` is another picture than the image
#: file; re-encoding the same picture (labelme embeds rotated photos as JPEG) stays far below.
EMBEDDED_DIFFERENCE = 24.0


def _check_embedded_picture(image_data: str, pixels: Any, report: Report, path: Path) -> None:
    """An error when the embedded image is another picture than the image file (same size)."""
    try:
        embedded = images.decode_base64_image(image_data, path)
    except InputError:
        return
    if embedded.shape != pixels.shape:
        return  # the reader refuses a size mismatch
    difference = float(np.abs(embedded.astype(np.int16) - pixels).mean())
    if difference > EMBEDDED_DIFFERENCE:
        report.problems.append(
            Problem(
                f"imageData is a different picture from {path.name} (mean difference "
                f"{difference:.0f} of 255); labelme shows imageData, Scuba Steve the file: "
                "remove imageData or fix imagePath",
                path,
                "imageData",
            )
        )


def validate_labelme_folder(
    folder: Path, recursive: bool = False, progress: Progress | None = None
) -> Report:
    """Check every LabelMe file and its image; report each problem with file and shape index."""
    docs, report = read_labelme_folder(folder, recursive, progress)
    labels_file = find_labels_file(folder)
    known = set(read_labels_file(labels_file)) if labels_file else None
    for doc in counted(docs, progress):
        _check_image(doc, report, "imagePath")
        problem = text_problem(doc.path.name)
        if problem:
            report.problems.append(
                Problem(
                    f"the image's name cannot be written in a COCO file: {problem}",
                    doc.path,
                    "imagePath",
                )
            )
        if known is not None and labels_file is not None:
            for i, ann in enumerate(doc.annotations):
                if ann.label not in known:
                    report.problems.append(
                        Problem(
                            f"label {ann.label!r} is not in {labels_file.name}",
                            doc.path,
                            f"annotation {i}",
                            "warning",
                        )
                    )
    return report


def validate_coco(
    coco_path: Path, images_dir: Path | None = None, progress: Progress | None = None
) -> tuple[CocoDataset, Report]:
    """Check a COCO file and the images it names."""
    report = Report(files=1)
    dataset = read_coco(coco_path, images_dir, report.problems)
    report.images = len(dataset.docs)
    for doc, image_id in counted(list(zip(dataset.docs, dataset.image_ids, strict=True)), progress):
        _check_image(doc, report, f"image id {image_id}")
        for ann in doc.annotations:
            box = ann.bounds()
            if box is not None and (
                box.x0 < -1 or box.y0 < -1 or box.x1 > doc.width + 1 or box.y1 > doc.height + 1
            ):
                report.problems.append(
                    Problem(
                        "coordinates reach outside the image",
                        coco_path,
                        f"image id {image_id}",
                        "warning",
                    )
                )
        report.annotations += len(doc.annotations)
    return dataset, report
