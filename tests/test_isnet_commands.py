"""Every command that takes an engine takes `isnet`: pre-annotation's refiner and the benchmarks
(the window's setting and `segment` are tested with them: tests/gui/test_engine_status.py,
tests/test_segment_coco.py). A thin random-weight IS-Net stands in for the published weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.isnet import thin_state, write_ours
from helpers.maskrcnn_h5 import CLASSES, fake_h5
from helpers.proposals import box_around, disc_scene
from PIL import Image

from scubasteve.cli import EXIT_INPUT_ERROR, EXIT_OK, main
from scubasteve.core.annotation import MaskPatch


@pytest.fixture
def thin_isnet(tmp_path: Path) -> None:
    from scubasteve import weights

    weights.import_file(
        "thin-isnet", write_ours(tmp_path / "thin.pt", thin_state(16)), kind="isnet"
    )


def test_refinement_by_isnet_refines_pixellib_masks(thin_isnet: None) -> None:
    from scubasteve.inference.maskrcnn.instances import Instance
    from scubasteve.inference.maskrcnn.refine import refine_instances
    from scubasteve.inference.preannotation import make_refiner

    image, disc = disc_scene()
    refiner = make_refiner("isnet", "cpu")
    assert refiner.name == "isnet"
    coarse = MaskPatch.from_full(disc)
    [refined] = refine_instances(image, [Instance("ball", 1, 0.9, coarse.box(), coarse)], refiner)
    assert refined.refined is not None and refined.refined.source.startswith("isnet:")


def test_annotate_refiner_isnet_without_weights_names_the_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, _ = disc_scene()
    Image.fromarray(image).save(tmp_path / "a.png")
    model = fake_h5(tmp_path / "m.h5", num_classes=4, class_names=list(CLASSES))
    args = ["annotate", str(tmp_path), "--model", str(model), "--refine", "--refiner", "isnet"]
    assert main(args) == EXIT_INPUT_ERROR
    assert "scubasteve models download isnet-general-use" in capsys.readouterr().err
    assert not list(tmp_path.glob("a.json"))


def test_bench_proposals_runs_isnet(
    thin_isnet: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, disc = disc_scene()
    Image.fromarray(image).save(tmp_path / "b.png")
    b = box_around(disc, 0.0)
    ring = np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]]).tolist()
    shape = {"label": "ball", "points": ring, "shape_type": "polygon", "group_id": None}
    doc = {"shapes": [shape], "imagePath": "b.png", "imageHeight": 240, "imageWidth": 320}
    (tmp_path / "b.json").write_text(json.dumps(doc), encoding="utf-8")
    args = ["bench", "proposals", "--labelme", str(tmp_path), "--engine", "isnet"]
    assert main([*args, "--device", "cpu", "--input-size", "64"]) == EXIT_OK
    assert any(line.startswith("| isnet") for line in capsys.readouterr().out.splitlines())
