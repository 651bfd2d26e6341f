"""`scubasteve eval`: COCO mask AP of predictions (or assisted labels) against ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import asdict

    from scubasteve.core.errors import Problem
    from scubasteve.evaluation.mask_ap import evaluate_docs, plot_ap_curve, read_side

    problems: list[Problem] = []
    gt_docs = read_side(args.gt, problems)
    pred_docs = read_side(args.pred, problems, gt=args.gt)
    result = evaluate_docs(gt_docs, pred_docs, args.iou_type, args.gt, args.pred, problems)
    for problem in problems:
        if problem.severity == "error":
            print(problem, file=sys.stderr)
    for line in result.lines():
        print(line)
    if getattr(args, "json", None):
        from scubasteve.core.atomic import atomic_write_json

        atomic_write_json(args.json, asdict(result))
    if args.plot:
        plot_ap_curve({args.pred.name or str(args.pred): result}, args.plot)
        print(f"plot written to {args.plot}")
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        print(f"{errors} error(s): the entries named above were left out", file=sys.stderr)
    return 1 if errors else 0
