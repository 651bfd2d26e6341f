"""`scubasteve annotate DIR`: pre-annotate a folder with PixelLib, headless."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


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
    p.add_argument("--refine", action="store_true", help="refine each instance mask by proposals")
    p.add_argument("--refiner", default="classic", help="mask-proposal engine used by --refine")
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
    p.set_defaults(handler=lazy("scubasteve.inference.pixellib_cli:cmd_annotate"))
