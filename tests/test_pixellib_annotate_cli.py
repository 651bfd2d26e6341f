"""`scubasteve annotate`: end to end with a random-weights Mask R-CNN (resume, skip, overwrite)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import CLASSES, fake_h5, random_maskrcnn_h5
from PIL import Image

from scubasteve.cli import main
from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.geometry import Polygon
from scubasteve.io.json_files import read_json
from scubasteve.io.labelme import read_labelme, write_labelme


def _image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
    pixels[20:80, 30:110] = (210, 90, 40)
    Image.fromarray(pixels).save(path)
    return path


def _hand_made(image: Path) -> Path:
    square = Polygon(np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 40.0], [10.0, 40.0]]))
    doc = ImageDoc(
        path=image, width=160, height=120, annotations=[Annotation("date", polygons=(square,))]
    )
    json_path = image.with_suffix(".json")
    write_labelme(doc, json_path)
    return json_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        _image(tmp_path / f"img{i}.png", i)
    return tmp_path


def _annotate(folder: Path, *extra: str) -> int:
    model = str(random_maskrcnn_h5())
    args = ["annotate", str(folder), "--model", model, "--speed", "256", "--min-score", "0"]
    return main([*args, *extra])


@pytest.mark.slow
def test_annotate_writes_new_files_keeps_hand_made_ones_and_resumes(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hand = _hand_made(folder / "img0.png")
    hand_bytes = hand.read_bytes()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    assert _annotate(folder) == 1  # the broken image fails, the rest is done
    out = capsys.readouterr().out
    assert "pre-annotated 2 image(s)" in out and "broken.png" in out
    assert hand.read_bytes() == hand_bytes
    assert not (folder / "broken.json").exists()
    for name in ("img1", "img2"):
        data = read_json(folder / f"{name}.json")
        assert data["scubasteve_preannotation"]["speed"] == 256
        doc = read_labelme(folder / f"{name}.json")
        assert doc.annotations and all(a.source == "pixellib" for a in doc.annotations)
        assert {a.label for a in doc.annotations} <= set(CLASSES)
        assert (doc.width, doc.height) == (160, 120)

    # An interrupted run: one file is missing. The next run writes only that one.
    (folder / "broken.png").unlink()
    kept = (folder / "img2.json").read_bytes()
    (folder / "img1.json").unlink()
    assert _annotate(folder) == 0
    out = capsys.readouterr().out
    assert "pre-annotated 1 image(s)" in out
    assert "skipped 1 already pre-annotated and 1 with annotation files of their own" in out
    assert (folder / "img1.json").exists()
    assert (folder / "img2.json").read_bytes() == kept
    assert hand.read_bytes() == hand_bytes


@pytest.mark.slow
def test_overwrite_replaces_pre_annotations_and_keeps_hand_annotations(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_pixellib_refine import FakeProposer

    import scubasteve.inference.preannotation as cli

    hand = _hand_made(folder / "img0.png")
    assert _annotate(folder, "--classes", "date,fig") == 0
    before = read_labelme(folder / "img1.json").annotations

    object_mask = np.zeros((120, 160), dtype=bool)
    object_mask[20:80, 30:110] = True
    monkeypatch.setattr(cli, "make_refiner", lambda name, device: FakeProposer(object_mask))
    assert _annotate(folder, "--overwrite", "--refine", "--classes", "date,fig") == 0
    capsys.readouterr()

    redone = read_labelme(folder / "img1.json").annotations
    assert len(redone) == len(before)  # replaced, not added to
    assert {a.label for a in redone} <= {"date", "fig"}
    # PixelLib's mask stays the outline by default; the refined one waits as the alternative.
    assert all(a.extra["scubasteve_masks"]["chosen"] == "pixellib" for a in redone)
    assert all(
        a.extra["scubasteve_masks"]["alternatives"][0]["source"].startswith("fake:") for a in redone
    )
    hand_doc = read_labelme(hand)
    manual = [a for a in hand_doc.annotations if a.source == "manual"]
    assert len(manual) == 1 and manual[0].label == "date"
    assert read_json(hand)["scubasteve_preannotation"]["refiner"] == "classic"


def test_refine_without_proposal_engines_is_a_clear_error(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "scubasteve.inference.engines", None)
    model = fake_h5(folder / "m.h5", num_classes=4, class_names=list(CLASSES))
    assert main(["annotate", str(folder), "--model", str(model), "--refine"]) == 2
    assert "mask-proposal engines" in capsys.readouterr().err
    assert not list(folder.glob("*.json"))


def test_annotating_an_empty_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["annotate", str(tmp_path), "--model", "whatever.h5"]) == 2
    assert "no images" in capsys.readouterr().err
