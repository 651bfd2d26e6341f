"""`scubasteve train maskrcnn --data DIR`: train a PixelLib Mask R-CNN on your own labels.

The run folder gets train.json/test.json (the split, COCO with category ids from 1), last.h5 and
best.h5 (checkpoints after every epoch, class names inside), log.csv, model.json (the settings) and
eval.json (mask AP on the test split). The best model is registered under --name. The work is in
`training/maskrcnn/run.py` and `train.py`; TensorFlow loads inside the handler.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def register(kinds: argparse._SubParsersAction) -> None:
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
    m.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from scubasteve.cli.progress import tqdm_bars
    from scubasteve.core.atomic import atomic_write_json
    from scubasteve.core.errors import InputError
    from scubasteve.inference.maskrcnn.weights import register_model
    from scubasteve.training.maskrcnn.augment import Augmentation
    from scubasteve.training.maskrcnn.data import coco_instances, write_split
    from scubasteve.training.maskrcnn.run import (
        evaluate_on,
        prepare_data,
        resolve_init,
        write_model_json,
    )
    from scubasteve.training.maskrcnn.train import TrainSettings, train_maskrcnn

    if not _NAME.match(args.name):
        raise InputError(f"--name {args.name!r} must be letters, digits, '.', '_' or '-' (max 64)")
    run_dir = args.out or Path("runs") / "maskrcnn" / args.name
    if (run_dir / "last.h5").exists() and not args.overwrite:
        raise InputError(
            "holds checkpoints of an earlier run; use --overwrite or another --out", run_dir
        )
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    data = prepare_data(
        args.data, args.images, classes, args.drop_unknown, args.test_fraction, args.seed
    )
    for problem in data.problems:
        print(problem, file=sys.stderr)
    settings = TrainSettings(
        backbone=args.backbone,
        init=resolve_init(args.init),
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        layers=args.layers,
        learning_rate=args.lr,
        augmentation=None if args.no_augment else Augmentation(),
        seed=args.seed,
        device=args.device,
    )
    train_json, test_json = write_split(data, run_dir)
    print(
        f"training {args.backbone} on {len(data.train)} image(s), testing on {len(data.test)}; "
        f"classes: {', '.join(data.class_names)}; init: {settings.init or 'random weights'}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    result = train_maskrcnn(
        settings,
        coco_instances(train_json, data.root, seed=args.seed),
        coco_instances(test_json, data.root),
        data.class_names,
        run_dir,
        progress=tqdm_bars(mask="mrcnn_mask_loss"),
    )
    seconds = time.perf_counter() - started
    meta: dict[str, Any] = {
        "class_names": data.class_names,
        "backbone": args.backbone,
        "image_size": args.image_size,
        "epochs": len(result.history),
        "trained_on": str(args.data),
        "run_dir": str(run_dir),
        "description": f"Mask R-CNN ({args.backbone}) trained here on {args.data.name}: "
        + ", ".join(data.class_names),
    }
    installed = register_model(args.name, result.best, meta)
    write_model_json(run_dir, settings, meta)
    for h in result.history:
        val = "-" if h.val_loss is None else f"{h.val_loss:.4f}"
        print(f"epoch {h.epoch}: loss {h.loss:.4f}, val_loss {val} ({h.seconds:.1f} s)")
    print(f"trained in {seconds:.1f} s on {result.device}; best checkpoint {result.best}")
    print(
        f"registered as {args.name!r} ({installed}); use: scubasteve annotate DIR --model {args.name}"
    )
    if not args.no_eval and data.test:
        evaluation = evaluate_on(result.best, data.test, args.image_size, args.device)
        atomic_write_json(run_dir / "eval.json", asdict(evaluation))
        print(f"test split ({len(data.test)} image(s)):")
        for line in evaluation.lines():
            print(f"  {line}")
    return 0
