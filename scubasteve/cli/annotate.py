"""`scubasteve annotate DIR`: pre-annotate a folder with PixelLib, headless."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "annotate", help="pre-annotate a folder of images with Mask R-CNN (PixelLib)"
    )
    p.add_argument("folder", type=Path)
    p.add_argument("--model", default="mask_rcnn_coco", help="model name or .h5 file")
    p.add_argument("--classes", default=None, help="only these labels (comma-separated)")
    p.add_argument("--speed", choices=("1024", "512", "384", "256"), default="1024")
    p.add_argument("--min-score", type=float, default=0.5)
    p.add_argument("--refine", action="store_true", help="refine each instance mask by proposals")
    p.add_argument("--overwrite", action="store_true", help="replace existing annotation files")
    p.add_argument(
        "--out", type=Path, default=None, help="write JSON here instead of beside images"
    )
    p.set_defaults(handler=lazy("scubasteve.inference.pixellib_cli:cmd_annotate"))
