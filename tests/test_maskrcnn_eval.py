"""`scubasteve eval`: COCO mask AP of predictions and of assisted annotations against ground truth."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scubasteve.cli import main
from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Polygon
from scubasteve.evaluation.mask_ap import evaluate_docs, read_side
from scubasteve.io.coco import write_coco
from scubasteve.io.labelme import write_labelme

W, H = 120, 100


def _square(x: float, y: float, size: float, label: str, score: float | None = None) -> Annotation:
    ring = np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=float)
    return Annotation(label, polygons=(Polygon(ring),), score=score)


def _docs(
    folder: Path, shift: float = 0.0, scores: bool = False, names: tuple[str, ...] = ("a", "b", "c")
) -> list[ImageDoc]:
    docs = []
    for i, name in enumerate(names):
        image = folder / f"{name}.png"
        if not image.exists():
            Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(image)
        anns = [
            _square(10 + i * 5 + shift, 10, 30, "cat", 0.9 if scores else None),
            _square(60 + shift, 50 - i * 5, 25, "dog", 0.8 if scores else None),
        ]
        docs.append(ImageDoc(path=image, width=W, height=H, annotations=anns))
    return docs


def test_ground_truth_against_itself_scores_one_everywhere(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    result = evaluate_docs(docs, docs)
    assert (result.ap, result.ap50, result.ap75) == (1.0, 1.0, 1.0)
    assert set(result.ap_per_iou) == {f"{0.5 + 0.05 * i:.2f}" for i in range(10)}
    assert all(v == pytest.approx(1.0) for v in result.ap_per_iou.values())
    assert result.ap_per_class == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}
    assert result.mean_best_iou == pytest.approx(1.0) and result.recall_at_50 == 1.0
    assert (result.images, result.gt_instances, result.predictions) == (3, 6, 6)


def test_shifted_predictions_lose_ap_at_strict_thresholds_first(tmp_path: Path) -> None:
    gt = _docs(tmp_path)
    pred = _docs(tmp_path, shift=4.0, scores=True)  # IoU about 0.76 for the cats, 0.72 for dogs
    result = evaluate_docs(gt, pred)
    curve = list(result.ap_per_iou.values())
    assert result.ap50 == pytest.approx(1.0)
    assert result.ap < 0.6 and curve[-1] == pytest.approx(0.0)
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(curve))
    assert 0.6 < result.mean_best_iou < 0.8


def test_missing_prediction_images_count_as_missed_objects(tmp_path: Path) -> None:
    gt = _docs(tmp_path)
    result = evaluate_docs(gt, gt[:2])
    assert result.recall_at_50 == pytest.approx(4 / 6)
    assert result.ap < 1.0


def test_assisted_labelme_folder_without_scores_is_scored_against_hand_coco(tmp_path: Path) -> None:
    images, hand, assisted = tmp_path / "images", tmp_path / "hand.json", tmp_path / "assisted"
    images.mkdir()
    assisted.mkdir()
    write_coco(hand, _docs(images), root=images)
    for doc in _docs(images, shift=1.0):
        # Assisted files live elsewhere, in a different order: images are matched by file name.
        doc.path = images / doc.path.name
        write_labelme(doc, assisted / (doc.path.stem + ".json"))
    result = evaluate_docs(read_side(hand), read_side(assisted))
    assert result.ap50 == pytest.approx(1.0) and result.mean_best_iou > 0.9
    assert result.predictions == 6 and not result.unmatched_pred_images


def test_prediction_labels_and_images_outside_the_ground_truth_are_reported(tmp_path: Path) -> None:
    gt = _docs(tmp_path)
    extra = ImageDoc(
        path=tmp_path / "z.png", width=W, height=H, annotations=[_square(0, 0, 9, "cat")]
    )
    pred = _docs(tmp_path)
    pred[0].annotations.append(_square(80, 5, 10, "horse", 0.5))
    result = evaluate_docs(gt, [*pred, extra])
    assert result.unmatched_pred_images == ["z.png"]
    assert result.unknown_pred_labels == {"horse": 1}
    assert result.ap == pytest.approx(1.0)


def test_duplicate_file_names_are_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    docs = _docs(tmp_path)
    twin = ImageDoc(path=tmp_path / "x" / "a.png", width=W, height=H)
    with pytest.raises(InputError, match="matched by file name"):
        evaluate_docs([*docs, twin], docs)


def test_eval_command_prints_ap_and_writes_plot_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_dir, pred_path = tmp_path / "gt", tmp_path / "pred.json"
    gt_dir.mkdir()
    for doc in _docs(gt_dir):
        write_labelme(doc, doc.path.with_suffix(".json"))
    write_coco(pred_path, _docs(gt_dir, shift=3.0, scores=True), root=gt_dir)
    plot, out = tmp_path / "ap.png", tmp_path / "ap.json"
    code = main(
        [
            "eval",
            "--gt",
            str(gt_dir),
            "--pred",
            str(pred_path),
            "--plot",
            str(plot),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "AP50  1.000" in text and "AP per IoU threshold: 0.50:" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(out.read_text())
    assert saved["ap50"] == pytest.approx(1.0) and len(saved["ap_per_iou"]) == 10


def test_eval_of_a_missing_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--gt", str(tmp_path / "nope"), "--pred", str(tmp_path)]) == 2
    assert "no such folder or file" in capsys.readouterr().err


def test_a_coco_results_list_is_scored_against_its_ground_truth_file(tmp_path: Path) -> None:
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    data = write_coco(gt_path, _docs(tmp_path), root=tmp_path)
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "segmentation": a["segmentation"],
            "score": 0.7,
        }
        for a in data["annotations"]
    ]
    results_path.write_text(json.dumps(results))
    result = evaluate_docs(read_side(gt_path), read_side(results_path, gt=gt_path))
    assert result.ap == pytest.approx(1.0) and result.predictions == 6
    with pytest.raises(InputError, match="results list"):
        read_side(results_path)
