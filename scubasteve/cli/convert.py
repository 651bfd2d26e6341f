"""`scubasteve convert`: LabelMe folder <-> COCO instances file."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


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
    p.set_defaults(handler=lazy("scubasteve.io.convert:cmd_convert"))
