"""Training data for Mask R-CNN: LabelMe folders or a COCO file -> split COCO files -> PixelLib dataset.

PixelLib's own path converts LabelMe with `labelme2coco`, whose current versions write `train.json`
as a folder and number categories from 0, and its loader makes every polygon its own instance. Here
the conversion goes through our io (category ids from 1, one instance per annotation however many
polygons or holes it has), and `CocoInstances` is a PixelLib `Dataset` that reads those files.
"""

from __future__ import annotations

import os
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.labels import find_labels_file, read_labels_file
from scubasteve.training.maskrcnn.augment import Augmentation, Transform


@dataclass
class TrainingData:
    """Annotated images split for training. `class_names` fix the class ids (1, 2, ...)."""

    train: list[ImageDoc]
    test: list[ImageDoc]
    class_names: list[str]
    root: Path
    problems: list[Problem] = field(default_factory=list)


def read_annotated(
    data: Path, images: Path | None = None
) -> tuple[list[ImageDoc], Path, list[Problem]]:
    """Documents with at least one area annotation from a LabelMe folder or a COCO file.

    Returns the documents, the folder their image paths are relative to, and the problems found.
    """
    from scubasteve.io.coco import read_coco
    from scubasteve.io.dataset import read_labelme_folder

    problems: list[Problem] = []
    if data.is_dir():
        docs, report = read_labelme_folder(data, recursive=True)
        problems.extend(report.problems)
        root = data
    elif data.is_file():
        docs = read_coco(data, images, problems).docs
        # Image paths stay relative to the folder that holds them all (file names may have folders).
        parents = [str(d.path.parent) for d in docs]
        root = Path(os.path.commonpath(parents)) if parents else data.parent
    else:
        raise InputError("no such folder or file", data)
    annotated = [d for d in docs if any(a.has_area for a in d.annotations)]
    if not annotated:
        raise InputError(
            "no annotated images found (LabelMe JSON beside the images, or a COCO instances file)",
            data,
        )
    return annotated, root, problems


def class_list(docs: list[ImageDoc], data: Path, classes: list[str] | None) -> list[str]:
    """The classes to train: given, else the folder's labels.txt, else every label found (sorted)."""
    if classes:
        return list(dict.fromkeys(classes))
    labels_file = find_labels_file(data) if data.is_dir() else None
    if labels_file is not None:
        return read_labels_file(labels_file)
    return sorted({a.label for d in docs for a in d.annotations if a.has_area})


def check_labels(
    docs: list[ImageDoc], class_names: list[str], drop_unknown: bool
) -> list[ImageDoc]:
    """Docs whose labels are all known; an unknown label is an error naming the files that use it
    (or, with `drop_unknown`, those annotations are left out)."""
    known = set(class_names)
    unknown: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        for label in {a.label for a in doc.annotations if a.has_area} - known:
            unknown[label].append(doc.path.name)
    if unknown and not drop_unknown:
        details = "; ".join(
            f"{label!r} in {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
            for label, files in sorted(unknown.items())
        )
        raise InputError(
            f"labels that are not among the classes ({', '.join(class_names)}): {details}. "
            "Add them to --classes (or labels.txt), or pass --drop-unknown to leave them out"
        )
    kept = []
    for doc in docs:
        anns = [a for a in doc.annotations if a.has_area and a.label in known]
        if anns:
            kept.append(
                ImageDoc(
                    path=doc.path,
                    width=doc.width,
                    height=doc.height,
                    annotations=anns,
                    loader=doc.loader,
                )
            )
    return kept


def split(
    docs: list[ImageDoc], test_fraction: float, seed: int = 0
) -> tuple[list[ImageDoc], list[ImageDoc]]:
    """A reproducible train/test split by image. With one image, it is used for both."""
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    if len(docs) == 1:
        return docs, docs
    n_test = (
        min(len(docs) - 1, max(1, round(len(docs) * test_fraction))) if test_fraction > 0 else 0
    )
    test = [docs[i] for i in sorted(order[:n_test])]
    train = [docs[i] for i in sorted(order[n_test:])]
    return train, test or train


def write_split(data: TrainingData, folder: Path) -> tuple[Path, Path]:
    """train.json and test.json (COCO, category ids from 1 in `class_names` order) in `folder`."""
    from scubasteve.io.coco import write_coco

    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.json", folder / "test.json"
    for docs, path in zip((data.train, data.test), paths, strict=True):
        write_coco(path, docs, categories=data.class_names, root=data.root, problems=data.problems)
    return paths


def _pixellib_dataset_base() -> type:
    from scubasteve.inference.maskrcnn.tf_runtime import import_tensorflow

    import_tensorflow()  # PixelLib imports TensorFlow, which must come up with Keras 2
    from pixellib.instance.utils import Dataset

    return Dataset


def coco_instances(
    coco_json: Path, images_root: Path, augmentation: Augmentation | None = None, seed: int = 0
) -> Any:
    """A prepared PixelLib `Dataset` over a COCO file written by `write_split`."""

    class CocoInstances(_pixellib_dataset_base()):  # type: ignore[misc]
        """PixelLib dataset: one instance per COCO annotation (all its polygons or its RLE).

        With `augmentation`, `load_image` draws a transform and `load_mask` (which PixelLib calls
        next for the same image, on the same thread) applies the same geometry to the masks.
        """

        def __init__(self) -> None:
            super().__init__()
            self.augmentation = augmentation
            self._rng = np.random.default_rng(seed)
            self._rng_lock = threading.Lock()
            self._pending = threading.local()

        def load_image(self, image_id: int) -> np.ndarray:
            from scubasteve.io.images import load_image

            info = self.image_info[image_id]
            image = load_image(info["path"])
            if image.shape[:2] != (info["height"], info["width"]):
                raise InputError(
                    f"image is {image.shape[1]}x{image.shape[0]} but its annotations are for "
                    f"{info['width']}x{info['height']}",
                    info["path"],
                )
            if self.augmentation is None:
                return image
            with self._rng_lock:
                transform = self.augmentation.sample(self._rng, *image.shape[:2])
            self._pending.value = (image_id, transform)
            return transform.image(image)

        def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
            from scubasteve.io.coco import decode_rle

            info = self.image_info[image_id]
            h, w = info["height"], info["width"]
            masks, class_ids = [], []
            for ann in info["annotations"]:
                seg = ann["segmentation"]
                if isinstance(seg, list):
                    from pycocotools import mask as mask_utils

                    rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
                    mask = mask_utils.decode(rle).astype(bool)
                else:
                    mask = decode_rle(seg, h, w)
                if mask.any():
                    masks.append(mask)
                    class_ids.append(self.map_source_class_id(f"scubasteve.{ann['category_id']}"))
            stack = np.stack(masks, axis=2) if masks else np.zeros((h, w, 0), dtype=bool)
            pending: tuple[int, Transform] | None = getattr(self._pending, "value", None)
            if pending is not None and pending[0] == image_id:
                stack = pending[1].masks(stack)
                self._pending.value = None
            return stack, np.array(class_ids, dtype=np.int32)

    from scubasteve.io.json_files import read_json

    data = read_json(coco_json)
    dataset = CocoInstances()
    for cat in data["categories"]:
        dataset.add_class("scubasteve", int(cat["id"]), str(cat["name"]))
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in data["annotations"]:
        by_image[int(ann["image_id"])].append(ann)
    for img in data["images"]:
        dataset.add_image(
            "scubasteve",
            image_id=int(img["id"]),
            path=str(images_root / img["file_name"]),
            width=int(img["width"]),
            height=int(img["height"]),
            annotations=by_image.get(int(img["id"]), []),
        )
    dataset.prepare()
    return dataset
