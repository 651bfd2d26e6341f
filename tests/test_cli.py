"""The command line: help, convert both ways, validate with problems named by file and shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scubasteve.cli import main
from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.io.images import encode_png
from scubasteve.io.labelme import write_labelme

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scubasteve", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    for command in ["convert", "validate", "bench", "models", "train", "annotate", "eval"]:
        assert command in out.stdout


def _folder(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        image = folder / f"im{i}.png"
        image.write_bytes(encode_png(np.zeros((40, 50, 3), np.uint8)))
        m = np.zeros((40, 50), bool)
        m[5 : 20 + i, 5:30] = True
        write_labelme(
            ImageDoc(image, 50, 40, [Annotation.from_mask("cat" if i % 2 else "dog", m)]),
            folder / f"im{i}.json",
        )
    return folder


def test_convert_labelme_to_coco_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    coco = tmp_path / "out.json"
    assert main(["convert", str(folder), str(coco)]) == 0
    data = json.loads(coco.read_text())
    assert len(data["images"]) == 3 and len(data["annotations"]) == 3
    assert main(["convert", str(folder), str(coco)]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    back = tmp_path / "lm"
    assert main(["convert", str(coco), str(back), "--images", str(folder)]) == 0
    written = sorted(p.name for p in back.glob("*.json"))
    assert written == ["im0.json", "im1.json", "im2.json"]
    assert json.loads((back / "im1.json").read_text())["imagePath"] == "../imgs/im1.png"
    # A second run keeps existing files unless asked.
    (back / "im1.json").write_text("precious")
    assert main(["convert", str(coco), str(back), "--images", str(folder)]) == 0
    assert (back / "im1.json").read_text() == "precious"


def test_validate_names_file_and_shape_and_sets_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    assert main(["validate", str(folder)]) == 0
    bad = json.loads((folder / "im1.json").read_text())
    bad["shapes"].append({"label": "x", "points": [[1, 1], [2, 2]], "shape_type": "polygon"})
    (folder / "im1.json").write_text(json.dumps(bad))
    (folder / "broken.json").write_text("{oops")
    (folder / "im2.png").write_bytes(b"not a png")
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'im1.json'}: shapes[1]: error" in err and "at least 3 points" in err
    assert f"{folder / 'broken.json'}" in err and "not valid JSON" in err
    assert "im2.png" in err


def test_validate_coco_reports_missing_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    coco = tmp_path / "c.json"
    assert main(["convert", str(folder), str(coco)]) == 0
    (folder / "im0.png").unlink()
    assert main(["validate", str(coco), "--images", str(folder)]) == 1
    assert "im0.png: image id 1: error: image file not found" in capsys.readouterr().err


def test_missing_source_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "x.json")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
