"""`scubasteve train maskrcnn --data DIR`: train a PixelLib Mask R-CNN on your own labels.

The run folder gets train.json/test.json (the split, COCO with category ids from 1), last.h5 and
best.h5 (checkpoints after every epoch, class names inside), log.csv, model.json (the settings) and
eval.json (mask AP on the test split). The best model is registered under --name.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.errors import InputError, Problem
from scubasteve.training.maskrcnn.augment import Augmentation
from scubasteve.training.maskrcnn.data import (
    TrainingData,
    check_labels,
    class_list,
    coco_instances,
    read_annotated,
    split,
    write_split,
)
from scubasteve.training.maskrcnn.train import TrainSettings, train_maskrcnn
from scubasteve.training.progress import tqdm_bars

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def prepare_data(
    data: Path,
    images: Path | None,
    classes: list[str] | None,
    drop_unknown: bool,
    test_fraction: float,
    seed: int,
) -> TrainingData:
    """Read, check and split the training data. A folder with train/ and test/ subfolders (PixelLib's
    layout) keeps that split."""
    problems: list[Problem] = []
    if data.is_dir() and (data / "train").is_dir() and (data / "test").is_dir():
        train, root, p1 = read_annotated(data / "train")
        test, _, p2 = read_annotated(data / "test")
        problems = p1 + p2
        root = data
        names = class_list(train + test, data, classes)
        train = check_labels(train, names, drop_unknown)
        test = check_labels(test, names, drop_unknown)
    else:
        docs, root, problems = read_annotated(data, images)
        names = class_list(docs, data, classes)
        train, test = split(check_labels(docs, names, drop_unknown), test_fraction, seed)
    if not train:
        raise InputError("no training images left after leaving out unknown labels", data)
    return TrainingData(train, test, names, root, problems)


def resolve_init(init: str) -> Path | None:
    if init.strip().lower() in ("none", "random", ""):
        return None
    from scubasteve.inference.maskrcnn.weights import resolve_model_file

    try:
        return resolve_model_file(init)
    except InputError as exc:
        raise InputError(f"{exc}; or train from random weights with --init none") from exc


def evaluate_on(best: Path, test: list[ImageDoc], image_size: int, device: str) -> Any:
    """Mask AP of the trained model on the test images (predictions at score >= 0.05)."""
    from scubasteve.bench.evaluate import evaluate_docs
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

    segmenter = InstanceSegmenter(best, speed=image_size, min_score=0.05, device=device)
    try:
        predicted = [
            ImageDoc(
                path=d.path,
                width=d.width,
                height=d.height,
                annotations=segmenter.segment(d.pixels()),
            )
            for d in test
        ]
    finally:
        segmenter.close()
    return evaluate_docs(test, predicted)


def cmd_train(args: argparse.Namespace) -> int:
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
    from scubasteve.inference.maskrcnn.weights import register_model

    installed = register_model(args.name, result.best, meta)
    settings_json = {
        **asdict(settings),
        "init": str(settings.init) if settings.init else None,
        **meta,
    }
    settings_json["augmentation"] = (
        None if settings.augmentation is None else asdict(settings.augmentation)
    )
    from scubasteve.io.atomic import atomic_write_json

    atomic_write_json(run_dir / "model.json", settings_json)
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
