"""Labels that look alike and categories that share a name (issue 21, items 4 and 5).

Labels are normalised in one place (`core.labels.normalise_label`): Unicode NFC, invisible
characters removed, whitespace runs as one space, none at the ends. Every reader uses it and says
when it changed a label; two COCO categories of one name are one label, both ids kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scubasteve.cli import main
from scubasteve.core.errors import Problem
from scubasteve.core.labels import RecentLabels, normalise_label, read_labels_file
from scubasteve.io import images
from scubasteve.io.coco import coco_dict, read_coco
from scubasteve.io.labelme import read_labelme

NFC = "caf\u00e9"


@pytest.mark.parametrize(
    "raw",
    [
        "cafe\u0301",  # NFD
        NFC + " ",
        " " + NFC,
        "caf\u200b\u00e9",  # zero-width space inside
        NFC + "\ufeff",  # byte order mark
        NFC + "\u200d",  # a joiner that joins nothing
        "\u200e" + NFC,  # left-to-right mark
    ],
)
def test_labels_that_look_alike_are_one_label(raw: str) -> None:
    assert normalise_label(raw) == NFC


def test_what_looks_different_stays_different() -> None:
    assert normalise_label("traffic\u00a0 light") == "traffic light"
    assert normalise_label("Dog") == "Dog"  # case is visible
    scientist = "\U0001f469\u200d\U0001f52c"  # an emoji sequence needs its joiner
    assert normalise_label(scientist) == scientist
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a Persian word
    assert normalise_label(persian) == persian
    assert normalise_label("\u200b \u200b") == ""


def _labelme(folder: Path, labels: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.png").write_bytes(images.encode_png(np.zeros((30, 40, 3), np.uint8)))
    shapes = [
        {"label": label, "points": [[i, i], [i + 9, i], [i, i + 9]], "shape_type": "polygon"}
        for i, label in enumerate(labels)
    ]
    data = {"shapes": shapes, "imagePath": "a.png", "imageData": None}
    path = folder / "a.json"
    path.write_text(json.dumps({**data, "imageWidth": 40, "imageHeight": 30}))
    return path


def test_labelme_reader_normalises_and_says_so(tmp_path: Path) -> None:
    path = _labelme(tmp_path, [NFC, "cafe\u0301", NFC + " ", "caf\u200b\u00e9"])
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    assert {a.label for a in doc.annotations} == {NFC}
    changed = [p for p in problems if "read as" in p.message]
    assert [p.where for p in changed] == ["shapes[1]", "shapes[2]", "shapes[3]"]
    assert all(p.severity == "warning" for p in changed)
    assert "\\u200b" in changed[2].message  # the invisible character is shown
    assert [c["name"] for c in coco_dict([doc])["categories"]] == [NFC]


def test_coco_category_names_are_normalised_and_merged(tmp_path: Path) -> None:
    (tmp_path / "1.png").write_bytes(images.encode_png(np.zeros((10, 20, 3), np.uint8)))
    cats = [{"id": 1, "name": NFC}, {"id": 2, "name": "cafe\u0301 "}]
    anns = [
        {"id": i, "image_id": 1, "category_id": i, "segmentation": [[1, 1, 8, 1, 8, 8]]}
        for i in (1, 2)
    ]
    data = {"images": [{"id": 1, "file_name": "1.png", "width": 20, "height": 10}]}
    (tmp_path / "c.json").write_text(json.dumps({**data, "annotations": anns, "categories": cats}))
    problems: list[Problem] = []
    dataset = read_coco(tmp_path / "c.json", tmp_path, problems)
    assert [a.label for a in dataset.docs[0].annotations] == [NFC, NFC]
    assert dataset.categories == [NFC] and dataset.category_names == {1: NFC, 2: NFC}
    assert {p.severity for p in problems} == {"warning"}
    assert any("ids 1 and 2" in p.message for p in problems)


def test_labels_file_and_the_window_label_list_normalise(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(f"{NFC}\ncafe\u0301\n{NFC}\u200b\ndog \n", encoding="utf-8")
    assert read_labels_file(path) == [NFC, "dog"]
    recent = RecentLabels([NFC, "dog"])
    assert recent.use("dog\u00a0") == "dog"
    assert recent.ordered() == ["dog", NFC]
    assert recent.filter("cafe\u0301") == [NFC]


# --- item 4: two COCO categories with the same name -----------------------------------------------


def _same_name_gt(tmp_path: Path) -> Path:
    for i in (1, 2):
        (tmp_path / f"{i}.png").write_bytes(images.encode_png(np.zeros((10, 20, 3), np.uint8)))
    cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "person"}]
    imgs = [{"id": i, "file_name": f"{i}.png", "width": 20, "height": 10} for i in (1, 2)]
    anns = [
        {"id": i, "image_id": i, "category_id": i, "segmentation": [[1, 1, 8, 1, 8, 8, 1, 8]]}
        for i in (1, 2)
    ]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return gt


def test_perfect_predictions_for_two_ids_of_one_name_score_ap_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = _same_name_gt(tmp_path)
    dets = [
        {"image_id": i, "category_id": i, "segmentation": [[1, 1, 8, 1, 8, 8, 1, 8]], "score": 1}
        for i in (1, 2)
    ]
    (tmp_path / "pred.json").write_text(json.dumps(dets))
    assert main(["eval", "--gt", str(gt), "--pred", str(tmp_path / "pred.json")]) == 0
    out = capsys.readouterr().out
    assert "AP    1.000" in out and "predictions 2" in out  # was AP 0.752, one id rejected


def test_validate_names_the_shared_category_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = _same_name_gt(tmp_path)
    assert main(["validate", str(gt)]) == 0  # a warning: both are read, as one label
    err = capsys.readouterr().err
    assert "'person'" in err and "ids 1 and 2" in err and "warning" in err
    assert main(["validate", "--strict", str(gt)]) == 1
