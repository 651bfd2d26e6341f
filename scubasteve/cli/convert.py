"""`scubasteve convert`: LabelMe folder <-> COCO instances file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a LabelMe folder to a COCO file, or a COCO file to LabelMe files",
        description=(
            "SRC is a folder of images with LabelMe JSON (written as COCO to DST.json) or a COCO "
            "instances JSON (written as LabelMe JSON into the folder DST)."
        ),
    )
    p.add_argument("src", type=Path, help="LabelMe folder or COCO JSON file")
    p.add_argument("dst", type=Path, help="COCO JSON file or LabelMe output folder")
    p.add_argument("--images", type=Path, help="image folder of a COCO source (default: beside it)")
    p.add_argument("--labels", type=Path, help="labels file fixing the COCO category order")
    p.add_argument("--rle", action="store_true", help="write every COCO mask as RLE")
    p.add_argument("--recursive", action="store_true", help="look for images in subfolders too")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scubasteve.cli.progress import ProgressBar
    from scubasteve.cli.report import print_report
    from scubasteve.core.errors import InputError
    from scubasteve.core.labels import read_labels_file
    from scubasteve.io import dataset

    src: Path = args.src
    bar = ProgressBar("converting", unit="file")
    if src.is_dir():
        out = args.dst if args.dst.suffix.lower() == ".json" else args.dst.with_suffix(".json")
        labels = read_labels_file(args.labels) if args.labels else None
        report = dataset.labelme_to_coco(
            src,
            out,
            labels,
            rle=args.rle,
            recursive=args.recursive,
            overwrite=args.overwrite,
            progress=bar,
        )
        print_report(
            report, f"wrote {out}: {report.images} images, {report.annotations} annotations"
        )
    elif src.is_file():
        report = dataset.coco_to_labelme(
            src, args.dst, args.images, overwrite=args.overwrite, progress=bar
        )
        print_report(report, f"wrote {len(report.written)} LabelMe files into {args.dst}")
    else:
        raise InputError("no such file or folder", src)
    return 1 if report.errors else 0
