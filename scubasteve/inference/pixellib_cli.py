"""`scubasteve annotate DIR`: pre-annotate a folder with PixelLib, headless, resumable.

Each image gets a LabelMe JSON file (written atomically, so an interrupted run leaves only whole
files) whose shapes wait for review as the window's pre-annotations do. Images that already have a
file are skipped: a run can be stopped and started again, and a file someone annotated by hand is
never touched. `--overwrite` redoes them, replacing only the unreviewed annotations an earlier
pre-annotation made. The policy lives in `preannotation`; this module runs the network locally
(`ray_annotate` runs it on a Ray cluster).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.core.labels import read_labels_file
from scubasteve.core.project import Project
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
from scubasteve.inference.preannotation import (
    AnnotateSummary,
    image_result,
    plan_folder,
    write_preannotation,
)

log = logging.getLogger(__name__)


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


def cmd_annotate(args: argparse.Namespace) -> int:
    from scubasteve.inference.remote_images import RemoteFolder, is_uri

    if is_uri(args.folder):  # s3://... : Ray Data reads it, files go to --out (docs/scale.md)
        project: Any = RemoteFolder.open(
            args.folder, args.out, getattr(args, "ray", None) is not None
        )
    else:
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
    run_info = {
        "model": str(args.model),
        "speed": segmenter.speed,
        "min_score": segmenter.min_score,
        "classes": sorted(segmenter.classes) if segmenter.classes else None,
        "refiner": args.refiner if args.refine else None,
        "prefer": args.prefer if args.refine else None,
    }
    if getattr(args, "ray", None) is not None:
        summary, device = _annotate_on_ray(args, project, segmenter, run_info)
    else:
        if getattr(args, "workers", None) is not None:
            raise InputError("--workers needs --ray (the local command runs one model)")
        summary, device = _annotate_here(args, project, segmenter, run_info)
    for line in summary.lines(device):
        print(line)
    return 1 if summary.failed or summary.stopped else 0


def _annotate_here(
    args: argparse.Namespace,
    project: Project,
    segmenter: InstanceSegmenter,
    run_info: dict[str, Any],
) -> tuple[AnnotateSummary, str]:
    refiner = make_refiner(args.refiner, getattr(args, "device", "auto")) if args.refine else None
    device = segmenter.device_description()
    print(
        f"model {segmenter.path} ({segmenter.spec.backbone}, {len(segmenter.class_names)} classes); {device}",
        file=sys.stderr,
    )
    summary = annotate_folder(
        project,
        segmenter,
        refiner=refiner,
        prefer=getattr(args, "prefer", "pixellib"),
        overwrite=args.overwrite,
        run_info=run_info,
    )
    return summary, device


def _annotate_on_ray(
    args: argparse.Namespace,
    project: Project,
    segmenter: InstanceSegmenter,
    run_info: dict[str, Any],
) -> tuple[AnnotateSummary, str]:
    from scubasteve.inference.ray_annotate import SegmenterSettings, annotate_on_ray

    settings = SegmenterSettings(
        model=str(segmenter.path),
        class_names=tuple(segmenter.class_names),
        speed=segmenter.speed,
        min_score=segmenter.min_score,
        classes=tuple(sorted(segmenter.classes)) if segmenter.classes else None,
        device=segmenter.device_request,
        refiner=args.refiner if args.refine else None,
        prefer=getattr(args, "prefer", "pixellib"),
    )
    print(f"model {segmenter.path} ({segmenter.spec.backbone}); running on Ray", file=sys.stderr)
    return annotate_on_ray(
        project,
        settings,
        address=args.ray or None,
        workers=args.workers,
        overwrite=args.overwrite,
        run_info=run_info,
    )
