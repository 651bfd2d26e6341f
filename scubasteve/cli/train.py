"""`scubasteve train ...`: train DeepMask (PyTorch) or Mask R-CNN (PixelLib) on your labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train DeepMask or Mask R-CNN on annotated images")
    kinds = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)

    d = kinds.add_parser("deepmask", help="train or fine-tune the DeepMask proposal network")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", type=Path, help="COCO instances JSON (with --images)")
    src.add_argument("--labelme", type=Path, help="a folder of images with LabelMe JSON")
    d.add_argument("--images", type=Path, help="image folder of the COCO file")
    d.add_argument("--init", default=None, help="start from these weights (name or file)")
    d.add_argument("--name", default="deepmask-custom", help="name of the trained model")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--lr", type=float, default=1e-3)
    d.add_argument("--device", default="auto")
    d.add_argument("--val-fraction", type=float, default=0.2)
    d.add_argument("--resume", action="store_true", help="continue an interrupted run")
    d.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, log)")
    d.set_defaults(handler=lazy("scubasteve.training.deepmask_cli:cmd_train"))

    s = kinds.add_parser("sharpmask", help="train the SharpMask refinement on a frozen DeepMask")
    ssrc = s.add_mutually_exclusive_group(required=True)
    ssrc.add_argument("--coco", type=Path)
    ssrc.add_argument("--labelme", type=Path)
    s.add_argument("--images", type=Path)
    s.add_argument("--deepmask", required=True, help="the frozen DeepMask (name or file)")
    s.add_argument("--name", default="sharpmask-custom")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--device", default="auto")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--out", type=Path, default=None)
    s.set_defaults(handler=lazy("scubasteve.training.deepmask_cli:cmd_train_sharpmask"))

    f = kinds.add_parser(
        "from-project", help="fine-tune DeepMask on a project's accepted annotations, report gain"
    )
    f.add_argument("folder", type=Path)
    f.add_argument("--init", default=None)
    f.add_argument("--name", default="deepmask-project")
    f.add_argument("--epochs", type=int, default=5)
    f.add_argument("--holdout", type=float, default=0.2)
    f.add_argument("--device", default="auto")
    f.set_defaults(handler=lazy("scubasteve.training.deepmask_cli:cmd_from_project"))

    m = kinds.add_parser("maskrcnn", help="train a PixelLib Mask R-CNN on LabelMe folders or COCO")
    m.add_argument("--data", type=Path, required=True, help="LabelMe folder or COCO JSON")
    m.add_argument("--images", type=Path, help="image folder (with a COCO file)")
    m.add_argument("--name", default="maskrcnn-custom")
    m.add_argument("--backbone", choices=("resnet50", "resnet101"), default="resnet101")
    m.add_argument("--init", default="mask_rcnn_coco", help="pretrained weights (name or file)")
    m.add_argument("--epochs", type=int, default=10)
    m.add_argument(
        "--steps", type=int, default=None, help="steps per epoch (default: dataset size)"
    )
    m.add_argument("--batch-size", type=int, default=1)
    m.add_argument("--test-fraction", type=float, default=0.2)
    m.add_argument("--out", type=Path, default=None)
    m.set_defaults(handler=lazy("scubasteve.training.maskrcnn_cli:cmd_train"))
