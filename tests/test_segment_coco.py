"""`scubasteve segment` on a COCO file's box-only annotations, and with the IS-Net engine.

To COCO: a copy of the user's file with a segmentation for each box and nothing else changed
(ids, categories, bbox, keys of their own), loadable by pycocotools, continued by a rerun. To
LabelMe: one file per image, for review in the window. With a thin random-weight IS-Net alone and
in the default engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.isnet import thin_state, write_ours
from helpers.proposals import box_around, disc_scene
from PIL import Image

from scubasteve.cli import EXIT_INPUT_ERROR, EXIT_OK, EXIT_SOME_FAILED, main
from scubasteve.core.geometry import mask_iou
from scubasteve.io.labelme import read_labelme

CENTRES = ((150, 120), (110, 100))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two photos with a ball's box each (ids 100, 101), a one-pixel box, a box outside the first
    image, a box on an image that is missing, and an annotation with its own segmentation."""
    photos = tmp_path / "photos"
    photos.mkdir()
    annotations = []
    for i, centre in enumerate(CENTRES):
        image, disc = disc_scene(centre=centre, seed=i)
        Image.fromarray(image).save(photos / f"img{i}.png")
        b = box_around(disc)
        bbox = [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0]
        annotations.append({"id": 100 + i, "image_id": 7 + i, "category_id": 3, "bbox": bbox,
                            "iscrowd": 0, "area": bbox[2] * bbox[3], "note": "mine"})  # fmt: skip
    annotations += [
        {"id": 200, "image_id": 7, "category_id": 5, "bbox": [10, 10, 1, 1], "iscrowd": 0},
        {"id": 201, "image_id": 7, "category_id": 3, "bbox": [330, 250, 70, 50], "iscrowd": 0},
        {"id": 202, "image_id": 9, "category_id": 3, "bbox": [1, 1, 20, 20], "iscrowd": 0},
        {"id": 203, "image_id": 8, "category_id": 5, "bbox": [1, 1, 20, 20], "iscrowd": 0,
         "segmentation": [[1, 1, 21, 1, 21, 21]], "area": 200.0},
    ]  # fmt: skip
    data = {
        "info": {"description": "my boxes"},
        "images": [
            {"id": 7, "file_name": "img0.png", "width": 320, "height": 240},
            {"id": 8, "file_name": "img1.png", "width": 320, "height": 240},
            {"id": 9, "file_name": "lost.png", "width": 320, "height": 240},
        ],
        "categories": [{"id": 3, "name": "ball"}, {"id": 5, "name": "speck"}],
        "annotations": annotations,
    }
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _run(dataset: Path, out: Path, *extra: str) -> int:
    images = dataset.parent / "photos"
    return main(["segment", str(dataset), "--images", str(images), "--out", str(out), *extra])


def test_to_coco_fills_in_the_boxes_and_keeps_everything_else(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pycocotools.coco import COCO

    original = dataset.read_bytes()
    out = tmp_path / "masks.json"
    assert _run(dataset, out, "--engine", "classic") == EXIT_SOME_FAILED
    report = capsys.readouterr().out
    assert "segmented 3 box(es)" in report
    assert "boxes.json: annotations[3] (id 201, ball)" in report and "320x240" in report
    assert "lost.png" in report
    assert dataset.read_bytes() == original, "the input is never written"
    before, after = json.loads(original), json.loads(out.read_text(encoding="utf-8"))
    assert [a["id"] for a in after["annotations"]] == [a["id"] for a in before["annotations"]]
    assert after["categories"] == before["categories"] and after["images"] == before["images"]
    by_id = {a["id"]: a for a in after["annotations"]}
    for i, ann_id in enumerate((100, 101)):
        ann, old = by_id[ann_id], before["annotations"][i]
        assert ann["bbox"] == old["bbox"] and ann["note"] == "mine"  # the user's box stays
        assert ann["scubasteve"]["needs_review"] is True and ann["scubasteve"]["from_box"] is True
        assert ann["scubasteve"]["source"].startswith("classic:")
    assert "segmentation" not in by_id[201] and "segmentation" not in by_id[202]
    assert by_id[203]["segmentation"] == [[1, 1, 21, 1, 21, 21]] and "scubasteve" not in by_id[203]
    coco = COCO(str(out))  # pycocotools reads it; the masks are where the balls are
    for i, ann_id in enumerate((100, 101)):
        disc = disc_scene(centre=CENTRES[i], seed=i)[1]
        assert mask_iou(coco.annToMask(coco.anns[ann_id]).astype(bool), disc) > 0.85
    assert coco.annToMask(coco.anns[200]).sum() == 1  # the one-pixel box

    capsys.readouterr()
    _run(dataset, out, "--engine", "classic")  # a rerun continues from the output
    assert "skipped 3 box(es) segmented before" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["annotations"] == after["annotations"]


def test_to_coco_refuses_to_write_over_the_input_or_a_file_it_did_not_write(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = dataset.read_bytes()
    assert _run(dataset, dataset, "--engine", "classic") == EXIT_INPUT_ERROR
    assert "is the input file" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"images": [], "annotations": []}', encoding="utf-8")
    assert _run(dataset, other, "--engine", "classic") == EXIT_INPUT_ERROR
    assert "was not written by scubasteve segment" in capsys.readouterr().err
    assert dataset.read_bytes() == original
    assert other.read_text(encoding="utf-8") == '{"images": [], "annotations": []}'


def test_to_labelme_writes_one_file_per_image_for_review(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "review"
    assert _run(dataset, out, "--engine", "classic") == EXIT_SOME_FAILED
    assert "segmented 3 box(es)" in capsys.readouterr().out
    first = read_labelme(out / "img0.json")
    assert first.path.samefile(dataset.parent / "photos" / "img0.png")
    made = [a for a in first.annotations if a.needs_review]
    assert sorted(a.label for a in made) == ["ball", "speck"]
    assert all(a.rejected() is not None for a in made)  # N in the window gives each box back
    kept = [a for a in read_labelme(out / "img1.json").annotations if not a.needs_review]
    assert [a.shape_type for a in kept] == ["polygon"]  # its own segmentation, as converted
    _run(dataset, out, "--engine", "classic")
    assert "skipped 3 box(es) segmented before" in capsys.readouterr().out


@pytest.fixture
def thin_isnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scubasteve import weights

    monkeypatch.setattr("scubasteve.inference.engines.sam2_problem", lambda weights=None: "no")
    path = write_ours(tmp_path / "thin.pt", thin_state(16))
    weights.import_file("thin-isnet", path, kind="isnet")


@pytest.mark.parametrize(
    ("engine", "serving"), [("isnet", "isnet"), ("ensemble", "isnet + classic")]
)
def test_the_isnet_engine_segments_boxes(
    thin_isnet: None,
    dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    serving: str,
) -> None:
    out = tmp_path / "isnet.json"
    assert _run(dataset, out, "--engine", engine, "--device", "cpu") == EXIT_SOME_FAILED
    captured = capsys.readouterr()
    assert (
        f"({serving}) on cpu" in captured.err
        if engine == "ensemble"
        else "isnet on cpu" in captured.err
    )
    assert "segmented 3 box(es)" in captured.out
    anns = {a["id"]: a for a in json.loads(out.read_text(encoding="utf-8"))["annotations"]}
    sources = {anns[i]["scubasteve"]["source"].split(":")[0] for i in (100, 101, 200)}
    assert sources <= {"isnet", "classic"} and (engine == "ensemble" or sources == {"isnet"})
    assert all(np.asarray(anns[i]["segmentation"], dtype=object).size for i in (100, 101, 200))


def test_a_clean_coco_file_exits_zero(dataset: Path, tmp_path: Path) -> None:
    data = json.loads(dataset.read_text(encoding="utf-8"))
    data["annotations"] = [a for a in data["annotations"] if a["id"] in (100, 101)]
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(data), encoding="utf-8")
    assert _run(clean, tmp_path / "out.json", "--engine", "classic") == EXIT_OK
