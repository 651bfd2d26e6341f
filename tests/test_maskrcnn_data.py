"""Mask R-CNN training data: LabelMe -> split COCO -> PixelLib dataset, and our augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Polygon
from scubasteve.io.labelme import write_labelme
from scubasteve.training.maskrcnn.augment import Augmentation, Transform
from scubasteve.training.maskrcnn.data import split, write_split
from scubasteve.training.maskrcnn.run import prepare_data

W, H = 96, 64


def _ring(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=float)


def _labelme_folder(folder: Path, n: int = 5, labels: tuple[str, ...] = ("cat", "dog")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = folder / f"im{i}.png"
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(image)
        # One object in two parts (two polygons, one instance) and one plain object.
        two_parts = Annotation(
            labels[0], polygons=(Polygon(_ring(4, 4, 10, 10)), Polygon(_ring(30, 4, 10, 10)))
        )
        plain = Annotation(labels[1 % len(labels)], polygons=(Polygon(_ring(50, 30, 20, 20)),))
        write_labelme(
            ImageDoc(path=image, width=W, height=H, annotations=[two_parts, plain]),
            image.with_suffix(".json"),
        )
    return folder


def test_split_is_reproducible_disjoint_and_keeps_one_image_for_both() -> None:
    docs = [ImageDoc(path=Path(f"{i}.png"), width=1, height=1) for i in range(10)]
    train, test = split(docs, 0.2, seed=3)
    assert len(test) == 2 and len(train) == 8
    assert not {d.path for d in train} & {d.path for d in test}
    assert split(docs, 0.2, seed=3) == (train, test)
    assert split(docs[:1], 0.2) == (docs[:1], docs[:1])
    with pytest.raises(InputError, match="test-fraction"):
        split(docs, 1.0)


def test_split_coco_files_number_categories_from_one_in_class_order(tmp_path: Path) -> None:
    data = prepare_data(_labelme_folder(tmp_path / "d"), None, ["dog", "cat"], False, 0.2, 0)
    train_json, test_json = write_split(data, tmp_path / "run")
    for path in (train_json, test_json):
        coco = json.loads(path.read_text())
        assert coco["categories"][0]["id"] == 1
        assert [c["name"] for c in coco["categories"]] == ["dog", "cat"]
    assert len(json.loads(train_json.read_text())["images"]) == 4


def test_labels_outside_the_class_list_are_named_with_their_files(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path / "d", n=2)
    with pytest.raises(InputError, match=r"'dog' in im0.png, im1.png"):
        prepare_data(folder, None, ["cat"], False, 0.5, 0)
    data = prepare_data(folder, None, ["cat"], True, 0.5, 0)
    assert {a.label for d in data.train + data.test for a in d.annotations} == {"cat"}


def test_labels_file_in_the_folder_fixes_the_class_order(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path / "d", n=2)
    (folder / "labels.txt").write_text("__ignore__\ndog\ncat\n")
    assert prepare_data(folder, None, None, False, 0.5, 0).class_names == ["dog", "cat"]


def test_a_folder_without_annotations_is_a_clear_error(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="no annotated images"):
        prepare_data(tmp_path, None, None, False, 0.2, 0)


def test_pixellib_train_test_subfolders_keep_their_split(tmp_path: Path) -> None:
    _labelme_folder(tmp_path / "d" / "train", n=3)
    _labelme_folder(tmp_path / "d" / "test", n=1)
    data = prepare_data(tmp_path / "d", None, None, False, 0.5, 0)
    assert (len(data.train), len(data.test)) == (3, 1)


@pytest.mark.slow
def test_dataset_gives_one_instance_per_annotation_even_with_several_polygons(
    tmp_path: Path,
) -> None:
    from scubasteve.training.maskrcnn.data import coco_instances

    data = prepare_data(_labelme_folder(tmp_path / "d", n=2), None, ["cat", "dog"], False, 0.0, 0)
    train_json, _ = write_split(data, tmp_path / "run")
    dataset = coco_instances(train_json, data.root)
    assert dataset.class_names == ["BG", "cat", "dog"]
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (H, W, 2) and list(class_ids) == [1, 2]
    assert masks[:, :, 0].sum() == 200 and masks[8, 8, 0] and masks[8, 34, 0]  # both squares
    assert dataset.load_image(0).shape == (H, W, 3)


@pytest.mark.slow
def test_augmented_dataset_moves_masks_with_the_image(tmp_path: Path) -> None:
    from scubasteve.training.maskrcnn.data import coco_instances

    folder = tmp_path / "d"
    folder.mkdir()
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[10:40, 20:60] = 255
    Image.fromarray(pixels).save(folder / "a.png")
    obj = Annotation("box", polygons=(Polygon(_ring(20, 10, 40, 30)),))
    write_labelme(
        ImageDoc(path=folder / "a.png", width=W, height=H, annotations=[obj]), folder / "a.json"
    )
    data = prepare_data(folder, None, None, False, 0.0, 0)
    train_json, _ = write_split(data, tmp_path / "run")
    strong = Augmentation(
        hflip=0.5, vflip=0.5, rotate=20, scale=(0.8, 1.2), brightness=0.0, contrast=0.0, blur=0.0
    )
    dataset = coco_instances(train_json, data.root, augmentation=strong, seed=1)
    for _ in range(5):
        image = dataset.load_image(0)
        masks, _ = dataset.load_mask(0)
        bright = image[:, :, 0] > 127
        overlap = (bright & masks[:, :, 0]).sum() / (bright | masks[:, :, 0]).sum()
        assert overlap > 0.9


def test_horizontal_flip_maps_pixel_columns_exactly() -> None:
    transform = Augmentation(
        hflip=1.0, rotate=0, scale=(1, 1), brightness=0, contrast=0, blur=0
    ).sample(np.random.default_rng(0), H, W)
    image = np.zeros((H, W, 3), np.uint8)
    image[5, 3] = 255
    masks = np.zeros((H, W, 1), bool)
    masks[5, 3, 0] = True
    assert transform.image(image)[5, W - 1 - 3, 0] == 255
    assert transform.masks(masks)[5, W - 1 - 3, 0] and transform.masks(masks).sum() == 1


def test_photometric_changes_leave_masks_alone() -> None:
    transform = Transform(matrix=None, gain=1.2, bias=-20.0, blur=1.0)
    masks = np.zeros((H, W, 2), bool)
    masks[10:20, 10:20, 1] = True
    assert transform.masks(masks) is masks
    image = np.full((H, W, 3), 100, np.uint8)
    assert transform.image(image)[0, 0, 0] == 100  # 100 * 1.2 - 20
