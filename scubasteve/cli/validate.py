"""`scubasteve validate`: report every problem in a LabelMe folder or a COCO file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a LabelMe folder or COCO file; list each problem with file and shape index",
    )
    p.add_argument("target", type=Path, help="folder of LabelMe JSON files, or a COCO JSON file")
    p.add_argument("--images", type=Path, help="image folder of a COCO file")
    p.add_argument("--recursive", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit non-zero on warnings too")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scubasteve.cli.progress import ProgressBar
    from scubasteve.cli.report import print_report
    from scubasteve.core.errors import InputError
    from scubasteve.io import dataset

    target: Path = args.target
    bar = ProgressBar("checking", unit="file")
    if target.is_dir():
        report = dataset.validate_labelme_folder(target, args.recursive, progress=bar)
    elif target.is_file():
        _, report = dataset.validate_coco(target, args.images, progress=bar)
    else:
        raise InputError("no such file or folder", target)
    summary = (
        f"checked {report.files} file(s), {report.images} image(s), {report.annotations} annotation(s): "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    print_report(report, summary)
    if report.errors or (args.strict and report.warnings):
        return 1
    return 0
