"""A Mask R-CNN training run's data and checks: read, check and split the labels, resolve the
starting weights, record the settings, and score the trained model on the test split.

`scubasteve train maskrcnn` (cli/train/maskrcnn.py) uses these around `train.train_maskrcnn`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.errors import InputError, Problem
from scubasteve.training.maskrcnn.data import (
    TrainingData,
    check_labels,
    class_list,
    read_annotated,
    split,
)

if TYPE_CHECKING:
    from scubasteve.training.maskrcnn.train import TrainSettings


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
    from scubasteve.weights import resolve_weights

    try:
        return resolve_weights(init, kind="maskrcnn")
    except InputError as exc:
        raise InputError(f"{exc}; or train from random weights with --init none") from exc


def evaluate_on(best: Path, test: list[ImageDoc], image_size: int, device: str) -> Any:
    """Mask AP of the trained model on the test images (predictions at score >= 0.05)."""
    from scubasteve.evaluation.mask_ap import evaluate_docs
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


def write_model_json(run_dir: Path, settings: TrainSettings, meta: dict[str, Any]) -> None:
    """The run's settings and the registered model's metadata, as `run_dir/model.json`."""
    from scubasteve.core.atomic import atomic_write_json

    settings_json = {
        **asdict(settings),
        "init": str(settings.init) if settings.init else None,
        **meta,
    }
    settings_json["augmentation"] = (
        None if settings.augmentation is None else asdict(settings.augmentation)
    )
    atomic_write_json(run_dir / "model.json", settings_json)
