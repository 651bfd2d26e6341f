"""Hostile and broken COCO files, conversions and `eval` inputs (issue 16): per-entry problems with
the reason, the rest going on, exit status saying that some failed, nothing silently changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scubasteve.cli import main
from scubasteve.core.errors import InputError, Problem
from scubasteve.io import images
from scubasteve.io.coco import read_coco
from scubasteve.io.dataset import coco_to_labelme

W, H = 20, 10
POLY = [[1, 1, 8, 1, 8, 8, 1, 8]]


def _coco(path: Path, images_: list, anns: list, cats: list | None = None, **top: object) -> Path:
    cats = cats if cats is not None else [{"id": 1, "name": "person"}]
    data = {"images": images_, "annotations": anns, "categories": cats, **top}
    path.write_text(json.dumps(data))
    return path


def _img(i: int, name: str = "", **kw: object) -> dict:
    return {"id": i, "file_name": name or f"{i}.png", "width": W, "height": H, **kw}


def _ann(i: int, image_id: object = 1, seg: object = POLY, **kw: object) -> dict:
    return {"id": i, "image_id": image_id, "category_id": 1, "segmentation": seg, **kw}


def _read(path: Path) -> tuple[int, list[Problem]]:
    problems: list[Problem] = []
    data = read_coco(path, path.parent, problems)
    return sum(len(d.annotations) for d in data.docs), problems


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_ann(2, image_id="1"), "image_id '1'"),
        (_ann(2, image_id=[1]), "image_id [1]"),
        (_ann(2, category_id=[1]), "category_id [1]"),
        (_ann(2, seg={"size": [H, W], "counts": [-5, W * H + 5]}), "negative"),
        (_ann(2, seg={"size": [H, W], "counts": [9999999999]}), "add up"),
        (_ann(2, seg={"size": [H, W], "counts": "zzzz"}), "character"),
        (_ann(2, seg={"size": [H, W], "counts": "1"}), "add up"),
        (_ann(2, seg=[[0, 0, 1e8, 0, 0, 5]]), "far outside"),
        (_ann(2, seg=[[0, 0, 5, 5, 0, 0]]), "3 distinct points"),
        (_ann(2, seg=[["1", 2, 3, 4, 5, 6]]), "flat list of numbers"),
        (_ann(2, score=float("nan")), "finite"),
    ],
)
def test_bad_annotation_is_an_error_and_the_others_are_read(
    tmp_path: Path, bad: dict, reason: str
) -> None:
    path = _coco(tmp_path / "c.json", [_img(1)], [_ann(1), bad])
    count, problems = _read(path)
    assert count == 1
    assert [p.where for p in problems if p.severity == "error"] == ["annotations[1]"]
    assert reason in str(problems)


def test_string_annotation_id_and_list_info_are_warnings(tmp_path: Path) -> None:
    path = _coco(tmp_path / "c.json", [_img(1)], [_ann("a")], info=[1, 2])
    count, problems = _read(path)
    assert count == 1 and {p.severity for p in problems} == {"warning"} and len(problems) == 2


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (_img("7"), "'id' must be an integer"),
        (_img([7]), "'id' must be an integer"),
        ({**_img(7), "file_name": None}, "non-empty string"),
        ({**_img(7), "file_name": ""}, "non-empty string"),
        ({**_img(7), "file_name": ".."}, "names no file"),
        (_img(7, width=10**12), "pixels"),
        (_img(7, width="20"), "'width' must be a positive integer"),
    ],
)
def test_bad_image_entry_is_an_error_and_the_others_are_read(
    tmp_path: Path, image: dict, reason: str
) -> None:
    path = _coco(tmp_path / "c.json", [_img(1), image], [_ann(1), _ann(2, image_id=7)])
    count, problems = _read(path)
    assert count == 1 and reason in str(problems)
    assert problems[0].where == "images[1]"
    if isinstance(image["id"], int):  # its annotations are not reported again
        assert len(problems) == 1


def test_duplicate_category_id_is_an_error_not_a_silent_relabel(tmp_path: Path) -> None:
    cats = [{"id": 1, "name": "person"}, {"id": 1, "name": "dupe"}]
    path = _coco(tmp_path / "c.json", [_img(1)], [_ann(1)], cats)
    problems: list[Problem] = []
    data = read_coco(path, tmp_path, problems)
    assert data.docs[0].annotations[0].label == "person"
    assert "used twice" in problems[0].message and problems[0].severity == "error"
    assert main(["validate", str(path)]) == 1


def test_colliding_file_names_keep_their_folders_and_the_count_is_true(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = [_img(1, "a/x.png"), _img(2, "b/x.png"), _img(3, "c.png"), _img(4, "a/x.jpg")]
    anns = [_ann(i, image_id=i) for i in range(1, 5)]
    path = _coco(tmp_path / "c.json", imgs, anns)
    out = tmp_path / "out"
    code = main(["convert", str(path), str(out), "--overwrite"])
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert written == ["a/x.json", "b/x.json", "c.json"]
    assert f"wrote {len(written)} LabelMe files" in capsys.readouterr().out
    assert code == 1  # a/x.jpg would have replaced a/x.png's file: an error, not a silent loss


def test_destination_that_is_a_file_is_an_input_error(tmp_path: Path) -> None:
    path = _coco(tmp_path / "c.json", [_img(1)], [_ann(1)])
    (tmp_path / "dst").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        coco_to_labelme(path, tmp_path / "dst")


def test_unwritable_subfolder_fails_that_file_only(tmp_path: Path) -> None:
    path = _coco(tmp_path / "c.json", [_img(1, "sub/a.png"), _img(2)], [_ann(1), _ann(2, 2)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the subfolder should go")
    report = coco_to_labelme(path, out)
    assert [p.name for p in report.written] == ["2.json"]
    assert len(report.errors) == 1 and "sub" in str(report.errors[0].path)


def _eval_setup(tmp_path: Path) -> tuple[Path, Path]:
    for i in (1, 2):
        (tmp_path / f"{i}.png").write_bytes(images.encode_png(np.zeros((H, W, 3), np.uint8)))
    gt = _coco(tmp_path / "gt.json", [_img(1), _img(2)], [_ann(1), _ann(2, image_id=2)])
    return gt, tmp_path / "pred.json"


def test_eval_reports_a_nan_score_and_scores_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, pred = _eval_setup(tmp_path)
    dets = [
        {"image_id": 1, "category_id": 1, "segmentation": POLY, "score": 0.9},
        {"image_id": 2, "category_id": 1, "segmentation": POLY, "score": float("nan")},
        {"image_id": 2, "category_id": 1, "segmentation": [[0, 0, 1e9, 0, 0, 5]], "score": 1},
    ]
    pred.write_text(json.dumps(dets))
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 1
    out = capsys.readouterr()
    assert "predictions 1" in out.out and "[1]" in out.err and "[2]" in out.err


def test_eval_does_not_score_predictions_drawn_on_an_image_of_another_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, pred = _eval_setup(tmp_path)
    imgs = [{**_img(1), "width": 2 * W, "height": 2 * H}, _img(2)]
    _coco(pred, imgs, [_ann(1), _ann(2, image_id=2)])
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 1
    out = capsys.readouterr()
    assert "AP    1.000" not in out.out and "40x20" in out.err


def test_image_outside_the_folder_is_exported_with_a_warning_and_a_name_that_exists(
    tmp_path: Path,
) -> None:
    from scubasteve.io.dataset import labelme_to_coco

    outside, folder = tmp_path / "outside", tmp_path / "labels"
    outside.mkdir()
    folder.mkdir()
    (outside / "img.png").write_bytes(images.encode_png(np.zeros((H, W, 3), np.uint8)))
    shape = {"label": "a", "points": [[1, 1], [8, 1], [8, 8]], "shape_type": "polygon"}
    doc = {"shapes": [shape], "imagePath": "../outside/img.png", "imageData": None}
    (folder / "img.json").write_text(json.dumps({**doc, "imageHeight": H, "imageWidth": W}))
    report = labelme_to_coco(folder, tmp_path / "out.json")
    name = json.loads((tmp_path / "out.json").read_text())["images"][0]["file_name"]
    assert (folder / name).is_file()  # was "img.png", which is not in the folder
    assert any("outside" in p.message and p.severity == "warning" for p in report.problems)


# --- issue 21 -----------------------------------------------------------------------------------


def test_convert_summary_counts_what_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(images.encode_png(np.zeros((H, W, 3), np.uint8)))
    shapes = [
        {"label": "a", "points": [[1, 1], [8, 1], [8, 8]], "shape_type": "polygon"},
        {"label": "a", "points": [[1, 1], [8, 8]], "shape_type": "line"},  # no area
        {"label": "a", "points": [[-9, -9], [-5, -9], [-5, -5]], "shape_type": "polygon"},
    ]
    data = {"shapes": shapes, "imagePath": "a.png", "imageData": None}
    (folder / "a.json").write_text(json.dumps({**data, "imageHeight": H, "imageWidth": W}))
    out = tmp_path / "out.json"
    assert main(["convert", str(folder), str(out)]) == 0
    written = json.loads(out.read_text())
    assert len(written["annotations"]) == 1
    text = capsys.readouterr()
    assert "1 images, 1 annotations" in text.out  # was "3 annotations"
    assert "not exported" in text.err
