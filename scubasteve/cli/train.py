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
    d.add_argument(
        "--arch",
        choices=("resnet50", "tiny"),
        default="resnet50",
        help="network when starting from random weights: the published ResNet-50 DeepMask, or a "
        "tiny one for quick checks",
    )
    _sgd_options(d)
    _workers_option(d)
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
    s.add_argument("--val-fraction", type=float, default=0.2)
    _sgd_options(s)
    _workers_option(s)
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
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--limit", type=int, default=None, help="at most this many held-out objects")
    f.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    f.add_argument("--seed", type=int, default=0, help="seed of the split and the sampling")
    _workers_option(f)
    f.set_defaults(handler=lazy("scubasteve.training.deepmask_cli:cmd_from_project"))

    m = kinds.add_parser(
        "maskrcnn",
        help="train a PixelLib Mask R-CNN on LabelMe folders or COCO",
        description=(
            "Trains on a LabelMe folder (or one with train/ and test/ subfolders, PixelLib's "
            "layout) or a COCO file, saves last.h5/best.h5 after every epoch, and registers the "
            "best model under --name for `scubasteve annotate --model NAME`."
        ),
    )
    m.add_argument("--data", type=Path, required=True, help="LabelMe folder or COCO JSON")
    m.add_argument("--images", type=Path, help="image folder (with a COCO file)")
    m.add_argument("--name", default="maskrcnn-custom")
    m.add_argument("--classes", default=None, help="class names in order (comma-separated)")
    m.add_argument(
        "--drop-unknown", action="store_true", help="leave out labels not among --classes"
    )
    m.add_argument("--backbone", choices=("resnet50", "resnet101"), default="resnet101")
    m.add_argument(
        "--init",
        default="mask_rcnn_coco",
        help="pretrained weights (name or .h5 file), or 'none' for random weights",
    )
    m.add_argument("--epochs", type=int, default=10)
    m.add_argument(
        "--steps", type=int, default=None, help="steps per epoch (default: dataset size)"
    )
    m.add_argument("--batch-size", type=int, default=1)
    m.add_argument("--image-size", type=int, default=512, help="training image side (x64)")
    m.add_argument(
        "--layers",
        choices=("all", "heads", "3+", "4+", "5+"),
        default="all",
        help="layers to train (heads: only the parts after the backbone)",
    )
    m.add_argument("--lr", type=float, default=0.001, help="learning rate (SGD, momentum 0.9)")
    m.add_argument("--no-augment", action="store_true", help="train without augmentation")
    m.add_argument("--test-fraction", type=float, default=0.2)
    m.add_argument("--seed", type=int, default=0, help="split and augmentation seed")
    m.add_argument("--device", choices=("auto", "cpu"), default="auto")
    m.add_argument("--no-eval", action="store_true", help="skip the mask AP on the test split")
    m.add_argument("--out", type=Path, default=None, help="run folder (default runs/maskrcnn/NAME)")
    m.add_argument("--overwrite", action="store_true", help="reuse a run folder with checkpoints")
    m.set_defaults(handler=lazy("scubasteve.training.maskrcnn_cli:cmd_train"))


def _sgd_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--batches-per-epoch", type=int, default=None, help="default: each object about twice"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the sampling")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    p.add_argument(
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="bfloat16 autocast (auto: where the CPU/GPU runs it fast)",
    )
    p.add_argument(
        "--compare-limit",
        type=int,
        default=200,
        help="at the end, compare the model's proposals with the classic engine's on up to this "
        "many validation objects (recorded with the model; the ensemble uses it); 0 skips",
    )


def _workers_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-parallel processes (torch.distributed: gloo on CPU, NCCL on GPU); each takes "
        "1/N of every batch (docs/scale.md). Without --ray they run on this machine",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="train in Ray Train's workers (optional extra 'scale'): no address starts a local "
        "Ray; 'auto' or ray://host:10001 uses a running cluster (docs/scale.md)",
    )
