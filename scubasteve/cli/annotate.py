"""`scubasteve annotate DIR`: pre-annotate a folder with PixelLib, headless, resumable.

The policy (what is skipped, replaced and flagged for review) and the folder loop live in
`inference/preannotation.py`; `--ray` runs the loop on a Ray cluster (`inference/ray_annotate.py`).
PixelLib and TensorFlow load inside the handler, when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scubasteve.cli.progress import ProgressBar
    from scubasteve.core.project import Project
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
    from scubasteve.inference.preannotation import AnnotateSummary, ImageOutcome


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "annotate",
        help="pre-annotate a folder of images with Mask R-CNN (PixelLib)",
        description=(
            "Writes one LabelMe JSON per image. Images that already have one are skipped (so an "
            "interrupted run resumes, and hand-made files are never touched) unless --overwrite, "
            "which replaces earlier pre-annotations and keeps every other annotation in the file."
        ),
    )
    p.add_argument("folder", type=lambda text: text if "://" in text else Path(text))  # s3://
    p.add_argument("--model", default="mask_rcnn_coco", help="model name or .h5 file")
    p.add_argument("--classes", default=None, help="only these labels (comma-separated)")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="class names of an .h5 that does not carry them (one per line, training order)",
    )
    p.add_argument(
        "--speed",
        choices=("1024", "512", "384", "256"),
        default="1024",
        help="longest image side the network sees (smaller is faster, coarser)",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="confidence threshold (0..1); default: PixelLib's for the speed "
        "(0.7 at 1024, 0.45 at 512, 0.25 at 384, 0.20 at 256)",
    )
    p.add_argument(
        "--tile",
        default="auto",
        metavar="auto|off|SIZE",
        help="large images: detect overlapping tiles of SIZE px plus the whole image shrunk, so "
        "small objects are not lost; auto (default) tiles images over 4096 px with 1024 px "
        "tiles, off never tiles (docs/pixellib.md)",
    )
    p.add_argument("--refine", action="store_true", help="refine each instance mask by proposals")
    p.add_argument(
        "--refiner",
        default="classic",
        help="mask-proposal engine used by --refine: classic, isnet, ensemble, deepmask, sam2",
    )
    p.add_argument(
        "--prefer",
        choices=("pixellib", "refined"),
        default="pixellib",
        help="with --refine, which mask becomes the outline (the other is kept as an alternative; "
        "'refined' is taken only where it overlaps PixelLib's mask by IoU >= 0.5)",
    )
    p.add_argument("--device", choices=("auto", "cpu"), default="auto", help="auto uses a GPU")
    p.add_argument("--overwrite", action="store_true", help="redo images that have JSON files")
    p.add_argument(
        "--out", type=Path, default=None, help="write JSON here instead of beside images"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (optional extra 'scale'): no address starts a local Ray for the run; "
        "'auto' or ray://host:10001 uses a running cluster (docs/scale.md)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --ray: Mask R-CNN actors (default one per GPU, or all CPUs but one)",
    )
    p.set_defaults(handler=cmd_annotate)


def cmd_annotate(args: argparse.Namespace) -> int:
    from scubasteve.cli.progress import ProgressBar
    from scubasteve.core.errors import InputError
    from scubasteve.core.labels import read_labels_file
    from scubasteve.core.project import Project
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
    from scubasteve.inference.maskrcnn.tiling import parse_tile
    from scubasteve.inference.preannotation import run_info
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
    args.tile = parse_tile(getattr(args, "tile", "auto"))
    segmenter = InstanceSegmenter(
        args.model,
        class_names=class_names,
        speed=args.speed,
        min_score=args.min_score,
        classes=classes,
        device=getattr(args, "device", "auto"),
    )
    prefer = getattr(args, "prefer", "pixellib")
    info = run_info(
        segmenter, str(args.model), args.refiner if args.refine else None, prefer, args.tile
    )
    if getattr(args, "ray", None) is None and getattr(args, "workers", None) is not None:
        raise InputError("--workers needs --ray (the local command runs one model)")
    bar = ProgressBar("annotating" if getattr(args, "ray", None) is None else "annotating (ray)",
                      unit="image")  # fmt: skip
    try:
        if getattr(args, "ray", None) is not None:
            summary, device = _annotate_on_ray(args, project, segmenter, info, bar)
        else:
            summary, device = _annotate_here(args, project, segmenter, info, bar)
    finally:
        bar.close()
    for line in summary_lines(summary, device):
        print(line)
    return 1 if summary.failed or summary.stopped else 0


def summary_lines(summary: AnnotateSummary, device: str) -> list[str]:
    """What a run did, for the terminal: counts, refinement, skipped images, failures."""
    n = len(summary.written)
    per_image = f" ({summary.seconds / n:.2f} s/image)" if n else ""
    counts = ", ".join(f"{label} {count}" for label, count in summary.labels.most_common())
    out = [
        f"pre-annotated {n} image(s) with {sum(summary.labels.values())} instance(s)"
        f"{': ' + counts if counts else ''} in {summary.seconds:.1f} s{per_image}; {device}"
    ]
    if summary.refined:
        out.append(
            f"refined masks taken for {summary.refined} instance(s) (PixelLib's kept as alternatives)"
        )
    elif summary.alternatives:
        out.append(
            f"refined masks stored as alternatives for {summary.alternatives} instance(s) "
            "(PixelLib's masks are the outlines; --prefer refined takes them instead)"
        )
    if summary.resumed or summary.kept:
        out.append(
            f"skipped {len(summary.resumed)} already pre-annotated and {len(summary.kept)} with "
            "annotation files of their own (use --overwrite to redo them)"
        )
    if summary.failed:
        out.append(f"failed {len(summary.failed)}:")
        out.extend(f"  {path}: {reason}" for path, reason in summary.failed)
    if summary.stopped:
        out.append(summary.stopped)
    return out


def _shown_on(bar: ProgressBar) -> dict[str, Any]:
    """The run's `progress` and `on_image` callbacks: the bar, with each image's instance count."""

    def on_image(outcome: ImageOutcome) -> None:
        if outcome.result is not None:
            bar.set_postfix(instances=len(outcome.result.annotations))

    return {"progress": bar, "on_image": on_image}


def _views_on(bar: ProgressBar) -> Any:
    """The run's `view_progress`: a tiled image's views done, beside the image bar."""

    def shown(done: int, total: int) -> None:
        if bar.bar is None:
            bar(0, 0)  # the first image is a tiled one: show the bar before it is done
        bar.set_postfix(tiles=f"{done}/{total}")

    return shown


def _annotate_here(
    args: argparse.Namespace,
    project: Project,
    segmenter: InstanceSegmenter,
    run_info: dict[str, Any],
    bar: ProgressBar,
) -> tuple[AnnotateSummary, str]:
    from scubasteve.inference.preannotation import annotate_folder, make_refiner

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
        tile=args.tile,
        view_progress=_views_on(bar),
        **_shown_on(bar),
    )
    return summary, device


def _annotate_on_ray(
    args: argparse.Namespace,
    project: Project,
    segmenter: InstanceSegmenter,
    run_info: dict[str, Any],
    bar: ProgressBar,
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
        tile=args.tile,
    )
    print(f"model {segmenter.path} ({segmenter.spec.backbone}); running on Ray", file=sys.stderr)
    return annotate_on_ray(
        project,
        settings,
        address=args.ray or None,
        workers=args.workers,
        overwrite=args.overwrite,
        run_info=run_info,
        **_shown_on(bar),
    )
