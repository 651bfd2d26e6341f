"""`scubasteve annotate DIR`: pre-annotate a folder with PixelLib, headless, resumable.

Each image gets a LabelMe JSON file (written atomically, so an interrupted run leaves only whole
files). Images that already have a file are skipped: a run can be stopped and started again, and a
file someone annotated by hand is never touched. `--overwrite` redoes them, replacing only the
annotations an earlier pre-annotation made and keeping every other annotation in the file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.errors import InputError
from scubasteve.core.labels import read_labels_file
from scubasteve.core.project import Project
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.instance_refine import preferred, refine_instances
from scubasteve.inference.instances import SOURCE
from scubasteve.inference.pixellib_engine import InstanceSegmenter

log = logging.getLogger(__name__)

#: Top-level LabelMe key recording that (and how) a file was pre-annotated.
RUN_KEY = "scubasteve_preannotation"


@dataclass
class AnnotateSummary:
    """What a run did, image by image."""

    written: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)  # pre-annotated by an earlier run
    kept: list[Path] = field(default_factory=list)  # had annotation files of their own
    failed: list[tuple[Path, str]] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    refined: int = 0
    alternatives: int = 0
    seconds: float = 0.0

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
        return out


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


def _existing_state(json_path: Path) -> str:
    """ "none", "ours" (a previous pre-annotation) or "theirs" (any other annotation file)."""
    if not json_path.exists():
        return "none"
    from scubasteve.io.atomic import read_json

    try:
        data = read_json(json_path)
    except InputError:
        return "theirs"
    return "ours" if isinstance(data, dict) and RUN_KEY in data else "theirs"


def _document(image: Path, json_path: Path, size: tuple[int, int], overwrite: bool) -> ImageDoc:
    """The document to write: a fresh one, or (with --overwrite) the existing file minus the
    annotations an earlier pre-annotation made."""
    from scubasteve.io.labelme import read_labelme

    width, height = size
    if overwrite and json_path.exists():
        doc = read_labelme(json_path)
        doc.annotations = [a for a in doc.annotations if a.source != SOURCE]
        doc.path, doc.width, doc.height = image, width, height
        return doc
    return ImageDoc(path=image, width=width, height=height)


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

    from scubasteve.io.labelme import write_labelme

    summary = AnnotateSummary()
    started = time.perf_counter()
    todo: list[tuple[Path, Path]] = []
    for image in project.images:
        json_path = project.annotation_path(image)
        state = _existing_state(json_path)
        if state != "none" and not overwrite:
            (summary.resumed if state == "ours" else summary.kept).append(image)
        else:
            todo.append((image, json_path))
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
            instances = job.result()
            if refiner is not None:
                instances = refine_instances(rgb, instances, refiner)
            doc = _document(image, json_path, (rgb.shape[1], rgb.shape[0]), overwrite)
        except InputError as exc:
            summary.failed.append((image, exc.problem))
            continue
        choices = [
            preferred(inst) if refiner is not None and prefer == "refined" else "pixellib"
            for inst in instances
        ]
        doc.annotations.extend(
            inst.annotation(c) for inst, c in zip(instances, choices, strict=True)
        )
        doc.extra[RUN_KEY] = {
            **(run_info or {}),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_labelme(doc, json_path)
        summary.written.append(image)
        summary.labels.update(inst.label for inst in instances)
        summary.refined += choices.count("refined")
        summary.alternatives += sum(inst.refined is not None for inst in instances)
        bar.set_postfix(instances=len(instances))
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def cmd_annotate(args: argparse.Namespace) -> int:
    project = Project.open(args.folder, annotation_dir=args.out)
    if not project.images:
        raise InputError("no images in this folder", args.folder)
    class_names = read_labels_file(args.labels) if getattr(args, "labels", None) else None
    classes = args.classes.split(",") if args.classes else None
    segmenter = InstanceSegmenter(
        args.model,
        class_names=class_names,
        speed=args.speed,
        min_score=args.min_score,
        classes=classes,
        device=getattr(args, "device", "auto"),
    )
    refiner = make_refiner(args.refiner, getattr(args, "device", "auto")) if args.refine else None
    device = segmenter.device_description()
    print(
        f"model {segmenter.path} ({segmenter.spec.backbone}, {len(segmenter.class_names)} classes); {device}",
        file=sys.stderr,
    )
    run_info = {
        "model": str(args.model),
        "speed": segmenter.speed,
        "min_score": segmenter.min_score,
        "classes": sorted(segmenter.classes) if segmenter.classes else None,
        "refiner": args.refiner if args.refine else None,
        "prefer": args.prefer if args.refine else None,
    }
    summary = annotate_folder(
        project,
        segmenter,
        refiner=refiner,
        prefer=getattr(args, "prefer", "pixellib"),
        overwrite=args.overwrite,
        run_info=run_info,
    )
    for line in summary.lines(device):
        print(line)
    return 1 if summary.failed else 0
