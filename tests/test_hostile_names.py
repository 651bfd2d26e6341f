"""Names from files and the command line (issue 21, items 9, 12 and 13).

Names that are not valid UTF-8 (a Latin-1 file name from a Windows zip; a JSON escape for a lone
surrogate), numbers longer than Python reads, and names longer than a file system holds are each
that entry's problem: the rest of the batch is written, and nothing is lost or crashes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from scubasteve.cli import main
from scubasteve.core.errors import InputError, Problem
from scubasteve.io import images
from scubasteve.io.coco import read_coco
from scubasteve.io.dataset import (
    coco_to_labelme,
    labelme_to_coco,
    validate_coco,
    validate_labelme_folder,
)
from scubasteve.io.labelme import read_labelme, write_labelme

W, H = 20, 10
PNG = images.encode_png(np.zeros((H, W, 3), np.uint8))
POLY = [[1, 1], [8, 1], [8, 8]]


def _shape(label: str = "a") -> dict:
    return {"label": label, "points": POLY, "shape_type": "polygon"}


def _labelme_text(image: str, labels: list[str]) -> str:
    data = {"shapes": [_shape(x) for x in labels], "imagePath": image, "imageData": None}
    return json.dumps({**data, "imageHeight": H, "imageWidth": W})


def _coco_text(file_names: list[str], category: str = "c") -> str:
    imgs = [
        {"id": i + 1, "file_name": n, "width": W, "height": H} for i, n in enumerate(file_names)
    ]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]]}
        for i in range(len(file_names))
    ]
    cats = [{"id": 1, "name": category}]
    return json.dumps({"images": imgs, "annotations": anns, "categories": cats})


# --- 9: names that are not UTF-8 -----------------------------------------------------------------


def test_latin1_image_name_is_that_images_error_and_the_coco_file_is_written(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9")  # what a Windows zip extracts: not UTF-8
    for stem in ("good", latin1):
        (folder / f"{stem}.png").write_bytes(PNG)
        (folder / f"{stem}.json").write_text(_labelme_text(f"{stem}.png", ["a"]))
    out = tmp_path / "out.json"
    report = labelme_to_coco(folder, out)
    data = json.loads(out.read_text(encoding="utf-8"))  # valid UTF-8: it used to raise
    assert [i["file_name"] for i in data["images"]] == ["good.png"]
    assert len(report.errors) == 1 and "0xE9" in report.errors[0].message
    assert any("0xE9" in p.message for p in validate_labelme_folder(folder).errors)


@pytest.mark.parametrize("where", ["label", "imagePath", "imagePath-high", "description"])
def test_lone_surrogate_escape_in_a_labelme_file_never_stops_a_save(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    shape = _shape("x\ud800" if where == "label" else "a")
    if where == "description":
        shape["description"] = "\udfff"
    image_path = {"imagePath": "a\udc80.png", "imagePath-high": "a\ud800.png"}.get(where, "a.png")
    data = {"shapes": [shape, _shape()], "imagePath": image_path, "imageData": None}
    path = tmp_path / "a.json"
    path.write_text(json.dumps({**data, "imageHeight": H, "imageWidth": W}))  # "\ud800" escapes
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    if where == "label":
        assert len(doc.annotations) == 1 and "not a character" in str(problems)
    write_labelme(doc, path)  # raised UnicodeEncodeError
    again = json.loads(path.read_text(encoding="utf-8"))
    assert len(again["shapes"]) == 2  # the refused shape is kept verbatim, escape and all
    if where == "label":
        assert again["shapes"][1]["label"] == "x\ud800"


def test_lone_surrogate_in_coco_names_is_per_entry(tmp_path: Path) -> None:
    for name in ("1.png", "2.png"):
        (tmp_path / name).write_bytes(PNG)
    path = tmp_path / "c.json"
    path.write_text(_coco_text(["1.png", "\ud800.png", "2.png"]))
    problems: list[Problem] = []
    dataset = read_coco(path, tmp_path, problems)
    assert len(dataset.docs) == 2 and "images[1]" in str(problems)
    _, report = validate_coco(path, tmp_path)
    assert len(report.errors) == 1
    out = tmp_path / "out"
    report = coco_to_labelme(path, out)
    assert sorted(p.name for p in out.iterdir()) == ["1.json", "2.json"]
    path.write_text(_coco_text(["1.png"], category="c\udc80"))
    problems = []
    dataset = read_coco(path, tmp_path, problems)
    assert dataset.categories == [] and "categories[0]" in str(problems)


# --- 10: numbers longer than Python reads -------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "refused"),
    [
        ("1" * 5000, True),
        ("-" + "9" * 4400, True),
        ("0." + "1" * 5000, False),
        ("1e" + "9" * 5000, False),
    ],
)
def test_a_number_of_thousands_of_digits_is_that_files_error(
    tmp_path: Path, number: str, refused: bool
) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "a.json").write_text(_labelme_text("a.png", ["a"]))
    text = _labelme_text("a.png", ["a"])
    (tmp_path / "b.json").write_text(text.replace('"imageWidth"', f'"big": {number}, "imageWidth"'))
    report = validate_labelme_folder(tmp_path)  # raised ValueError: the whole batch was lost
    if refused:
        (error,) = report.errors
        assert error.path.name == "b.json" and "digits" in error.message
        assert report.annotations == 1
    else:  # a float: read (1e9999... is infinity, written back as null with a warning)
        assert not report.errors and report.annotations == 2


# --- 12: names the file system cannot hold ------------------------------------------------------


@pytest.mark.parametrize("length", [252, 253, 254, 255])
def test_coco_file_names_of_252_to_255_bytes_convert_or_fail_that_image_only(
    tmp_path: Path, length: int
) -> None:
    long_name = "x" * (length - 4) + ".png"  # its LabelMe file's name is one byte longer
    path = tmp_path / "c.json"
    path.write_text(_coco_text([long_name, "short.png"]))
    out = tmp_path / "out"
    report = coco_to_labelme(path, out)  # 255 crashed "File name too long", 252-254 could not save
    written = sorted(p.name for p in report.written)
    if length < 255:
        assert written == sorted([long_name[:-4] + ".json", "short.json"]) and not report.errors
    else:
        assert written == ["short.json"]
        (error,) = report.errors
        assert "256 bytes" in error.message and error.path is not None


@pytest.mark.parametrize("length", [242, 248, 255])
def test_labelme_files_of_long_names_save(tmp_path: Path, length: int) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    path = tmp_path / ("y" * (length - 5) + ".json")
    path.write_text(_labelme_text("a.png", ["a"]))
    doc = read_labelme(path)
    write_labelme(doc, path)  # the temporary name added 14 bytes and failed
    assert read_labelme(path).annotations and not [
        p for p in tmp_path.iterdir() if p.name.endswith(".tmp")
    ]


def test_a_failed_save_names_the_file_not_the_folder(tmp_path: Path) -> None:
    from scubasteve.core.atomic import atomic_write_text

    target = tmp_path / ("z" * 256 + ".json")  # no file system holds this name
    with pytest.raises(InputError) as info:
        atomic_write_text(target, "{}")
    assert info.value.path == target and "255" in info.value.problem


def test_a_coco_file_name_longer_than_any_file_system_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(_coco_text(["x" * 300 + ".png", "ok.png"]))
    (tmp_path / "ok.png").write_bytes(PNG)
    _, report = validate_coco(path, tmp_path)  # used to raise "File name too long"
    assert len(report.errors) == 1 and report.images == 1


# --- 13: the command line -----------------------------------------------------------------------


def test_an_unexpected_error_is_a_message_and_its_own_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scubasteve.cli import EXIT_INTERNAL_ERROR
    from scubasteve.io import dataset

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(dataset, "validate_labelme_folder", broken)
    assert main(["validate", str(tmp_path)]) == EXIT_INTERNAL_ERROR != 1
    err = capsys.readouterr().err
    assert "internal error" in err and "ZeroDivisionError: a bug" in err
    assert "Traceback" not in err


def test_a_command_line_path_that_is_not_utf8_is_printed_not_crashed_on(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(PNG)
    (folder / "a.json").write_text(_labelme_text("a.png", ["a"]))
    out = tmp_path / os.fsdecode(b"out\xe9.json")
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", "convert", str(folder), str(out)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert out.is_file() and b"out" in done.stdout


def test_the_window_export_names_an_image_whose_name_is_not_utf8(tmp_path: Path) -> None:
    from scubasteve.core.project import Project
    from scubasteve.io.project_export import export_project_coco

    folder = tmp_path / "photos"
    folder.mkdir()
    for stem in ("good", os.fsdecode(b"caf\xe9")):
        (folder / f"{stem}.png").write_bytes(PNG)
        (folder / f"{stem}.json").write_text(_labelme_text(f"{stem}.png", ["a"]))
    summary = export_project_coco(Project.open(folder), tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [i["file_name"] for i in data["images"]] == ["good.png"] and summary.images == 1
    assert "not valid UTF-8" in summary.text() and "caf" in summary.text()
