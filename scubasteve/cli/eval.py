"""`scubasteve eval`: COCO mask AP of predictions (or assisted labels) against ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="COCO mask AP, AP50, AP75 and AP per IoU threshold",
        description=(
            "Scores predictions (a COCO file or a LabelMe folder, e.g. from `scubasteve annotate`) "
            "or annotations made with assistance against ground truth of the same images, matched "
            "by file name. Annotations without a score count with score 1.0."
        ),
    )
    p.add_argument(
        "--gt", type=Path, required=True, help="ground truth: COCO JSON or LabelMe folder"
    )
    p.add_argument(
        "--pred", type=Path, required=True, help="predictions: COCO JSON or LabelMe folder"
    )
    p.add_argument("--plot", type=Path, default=None, help="save the AP-vs-IoU curve as a PNG")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    p.add_argument("--iou-type", choices=("segm", "bbox"), default="segm")
    p.set_defaults(handler=lazy("scubasteve.bench.evaluate:cmd_eval"))
