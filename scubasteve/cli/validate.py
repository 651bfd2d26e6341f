"""`scubasteve validate`: report every problem in a LabelMe folder or a COCO file."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a LabelMe folder or COCO file; list each problem with file and shape index",
    )
    p.add_argument("target", type=Path, help="folder of LabelMe JSON files, or a COCO JSON file")
    p.add_argument("--images", type=Path, help="image folder of a COCO file")
    p.add_argument("--recursive", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit non-zero on warnings too")
    p.set_defaults(handler=lazy("scubasteve.io.convert:cmd_validate"))
