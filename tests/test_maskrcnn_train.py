"""`scubasteve train maskrcnn`: one short real training step on a tiny LabelMe set, then use the model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import random_maskrcnn_h5
from PIL import Image

from scubasteve.cli import main
from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.geometry import Polygon
from scubasteve.io.labelme import write_labelme

CLASSES = ["apple", "pear"]


def _tiny_labelme_set(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 50, (96, 128, 3), dtype=np.uint8)
        pixels[10:50, 10:60] = (200, 40, 40)
        pixels[50:90, 70:120] = (60, 200, 60)
        image = folder / f"t{i}.png"
        Image.fromarray(pixels).save(image)
        anns = [
            Annotation(
                "apple", polygons=(Polygon(np.array([[10, 10], [60, 10], [60, 50], [10, 50.0]])),)
            ),
            Annotation(
                "pear", polygons=(Polygon(np.array([[70, 50], [120, 50], [120, 90], [70, 90.0]])),)
            ),
        ]
        write_labelme(
            ImageDoc(path=image, width=128, height=96, annotations=anns), image.with_suffix(".json")
        )
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once for the module: 1 epoch of 1 step, heads only, 128 px, from a random ResNet-50."""
    base = tmp_path_factory.mktemp("train")
    data = _tiny_labelme_set(base / "data")
    run = base / "run"
    models = base / "models"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCUBASTEVE_DATA_DIR", str(models))
        code = main([
            "train", "maskrcnn", "--data", str(data), "--name", "tiny", "--backbone", "resnet50",
            "--init", str(random_maskrcnn_h5()), "--epochs", "1", "--steps", "1",
            "--image-size", "128", "--layers", "heads", "--test-fraction", "0.34",
            "--out", str(run), "--device", "cpu",
        ])  # fmt: skip
    return {"code": code, "data": data, "run": run, "models": models}


@pytest.mark.slow
def test_training_writes_split_checkpoints_log_and_evaluation(trained: dict) -> None:
    from scubasteve.inference.maskrcnn.model import inspect_h5

    assert trained["code"] == 0
    run: Path = trained["run"]
    train = json.loads((run / "train.json").read_text())
    test = json.loads((run / "test.json").read_text())
    assert [c["name"] for c in train["categories"]] == CLASSES and train["categories"][0]["id"] == 1
    assert len(train["images"]) == 2 and len(test["images"]) == 1
    for name in ("best.h5", "last.h5"):
        info = inspect_h5(run / name)
        assert info.class_names == tuple(CLASSES) and info.backbone == "resnet50"
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert len(rows) == 1 and float(rows[0]["loss"]) > 0 and rows[0]["val_loss"]
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["images"] == 1 and evaluation["gt_instances"] == 2
    settings = json.loads((run / "model.json").read_text())
    assert settings["class_names"] == CLASSES and settings["layers"] == "heads"


@pytest.mark.slow
def test_trained_model_is_registered_by_name_and_annotates(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.weights import resolve_weights

    monkeypatch.setenv("SCUBASTEVE_DATA_DIR", str(trained["models"]))
    assert resolve_weights("tiny", kind="maskrcnn").is_file()
    Image.open(trained["data"] / "t0.png").save(tmp_path / "new.png")
    assert (
        main(["annotate", str(tmp_path), "--model", "tiny", "--speed", "256", "--min-score", "0"])
        == 0
    )
    data = json.loads((tmp_path / "new.json").read_text())
    assert {s["label"] for s in data["shapes"]} <= set(CLASSES)


def test_a_second_run_into_the_same_folder_needs_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.h5").write_bytes(b"old")
    code = main(["train", "maskrcnn", "--data", str(tmp_path), "--out", str(run), "--init", "none"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert (run / "last.h5").read_bytes() == b"old"


def test_missing_coco_weights_suggest_random_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_labelme_set(tmp_path / "data")
    code = main(["train", "maskrcnn", "--data", str(data), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "mask_rcnn_coco" in err and "--init none" in err
