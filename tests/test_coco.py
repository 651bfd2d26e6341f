"""COCO instances JSON: export that pycocotools loads and evaluates, import that restores annotations."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.errors import Problem
from scubasteve.core.geometry import mask_iou
from scubasteve.io.coco import read_coco, results_from_docs, write_coco


def _docs(tmp_path: Path) -> list[ImageDoc]:
    rng = np.random.default_rng(0)
    docs = []
    for i in range(3):
        anns = []
        for j in range(4):
            m = np.zeros((60, 80), bool)
            y, x = rng.integers(0, 40), rng.integers(0, 60)
            m[y : y + 15 + j, x : x + 12 + j] = True
            if j == 3:
                m[y + 4 : y + 8, x + 4 : x + 8] = False  # a hole: must go out as RLE
            anns.append(Annotation.from_mask(["cat", "dog"][j % 2], m, score=0.5 + j / 10))
        docs.append(ImageDoc(tmp_path / f"img{i}.jpg", 80, 60, anns))
    return docs


def _evaluate(gt_path: Path, results: list[dict]) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_export_loads_in_pycocotools_and_self_evaluation_gives_ap_1(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    out = tmp_path / "coco.json"
    data = write_coco(out, docs, root=tmp_path)
    assert [c["id"] for c in data["categories"]] == [1, 2]
    assert [c["name"] for c in data["categories"]] == ["cat", "dog"]
    assert {a["iscrowd"] for a in data["annotations"]} == {0}
    holed = [a for a in data["annotations"] if isinstance(a["segmentation"], dict)]
    assert len(holed) == 3  # exactly the annotations with holes are RLE
    for ann, src in zip(data["annotations"], [a for d in docs for a in d.annotations], strict=True):
        assert ann["area"] == src.to_mask(60, 80).sum()
        x, y, w, h = ann["bbox"]
        b = src.bounds()
        assert (x, y, x + w, y + h) == (b.x0, b.y0, b.x1, b.y1)
    ev = _evaluate(out, results_from_docs(docs, [1, 2, 3], {"cat": 1, "dog": 2}))
    assert ev.stats[0] == pytest.approx(1.0)


def test_a_worse_prediction_scores_below_1(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    out = tmp_path / "coco.json"
    write_coco(out, docs)
    shrunk = []
    for doc in docs:
        anns = [
            Annotation.from_mask(a.label, np.roll(a.to_mask(60, 80), 6, axis=1))
            for a in doc.annotations
        ]
        shrunk.append(ImageDoc(doc.path, 80, 60, anns))
    ev = _evaluate(out, results_from_docs(shrunk, [1, 2, 3], {"cat": 1, "dog": 2}))
    assert ev.stats[0] < 0.9


def test_import_restores_annotations_exactly(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    out = tmp_path / "coco.json"
    write_coco(out, docs, root=tmp_path)
    ds = read_coco(out, images_dir=tmp_path)
    assert ds.categories == ["cat", "dog"] and ds.image_ids == [1, 2, 3]
    for a, b in zip(docs, ds.docs, strict=True):
        assert b.path == tmp_path / a.path.name
        assert [x.label for x in a.annotations] == [x.label for x in b.annotations]
        for x, y in zip(a.annotations, b.annotations, strict=True):
            assert mask_iou(x.to_mask(60, 80), y.to_mask(60, 80)) == 1.0
            assert y.score == pytest.approx(x.score)
    # and exported again, it is the same file content
    again = tmp_path / "again.json"
    write_coco(again, ds.docs, categories=ds.categories, root=tmp_path)
    assert (
        json.loads(again.read_text())["annotations"] == json.loads(out.read_text())["annotations"]
    )


def test_bbox_only_and_crowd_and_bad_entries(tmp_path: Path) -> None:
    data = {
        "images": [
            {"id": 5, "file_name": "a.jpg", "width": 50, "height": 40},
            {"id": 5, "file_name": "dup.jpg", "width": 1, "height": 1},
        ],
        "categories": [{"id": 3, "name": "box"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 3, "bbox": [2, 3, 10, 5]},
            {
                "id": 2,
                "image_id": 5,
                "category_id": 3,
                "segmentation": {"size": [40, 50], "counts": [100, 20, 1880]},
                "iscrowd": 1,
            },
            {"id": 3, "image_id": 9, "category_id": 3, "bbox": [0, 0, 1, 1]},
            {"id": 4, "image_id": 5, "category_id": 7, "bbox": [0, 0, 1, 1]},
            {"id": 5, "image_id": 5, "category_id": 3, "segmentation": [[1, 2, 3]]},
        ],
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    problems: list[Problem] = []
    ds = read_coco(path, problems=problems)
    (doc,) = ds.docs
    rect, crowd = doc.annotations
    assert rect.shape_type == "rectangle" and rect.to_mask(40, 50).sum() == 50
    assert crowd.extra["iscrowd"] == 1 and crowd.to_mask(40, 50).sum() == 20
    wheres = sorted(p.where for p in problems)
    assert wheres == ["annotations[2]", "annotations[3]", "annotations[4]", "images[1]"]
    exported = write_coco(tmp_path / "out.json", ds.docs)
    assert [a["iscrowd"] for a in exported["annotations"]] == [0, 1]


@pytest.mark.shared_data
def test_coco128_reads_and_exports_identically_for_pycocotools(
    shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / "coco128-seg" / "instances.json"
    problems: list[Problem] = []
    ds = read_coco(src, problems=problems)
    assert problems == []
    assert len(ds.docs) == 126 and sum(len(d.annotations) for d in ds.docs) == 929
    assert all(d.path.is_file() for d in ds.docs)
    out = tmp_path / "coco.json"
    write_coco(out, ds.docs, categories=ds.categories)
    original = json.loads(src.read_text())
    mine = json.loads(out.read_text())
    assert [a["area"] for a in mine["annotations"]] == pytest.approx(
        [a["area"] for a in original["annotations"]], abs=1.0
    )
    ev = _evaluate(
        out,
        results_from_docs(
            ds.docs,
            [i + 1 for i in range(len(ds.docs))],
            {n: i + 1 for i, n in enumerate(ds.categories)},
        ),
    )
    assert ev.stats[0] == pytest.approx(1.0)


@pytest.mark.shared_data
def test_shared_labelme_sets_convert_to_coco_that_pycocotools_evaluates(
    shared_data: Path, tmp_path: Path
) -> None:
    from scubasteve.io.dataset import labelme_to_coco, read_labelme_folder

    for folder in [
        shared_data / "labelme-tony607" / "images",
        shared_data / "labelme-examples" / "instance_segmentation" / "data_annotated",
    ]:
        out = tmp_path / f"{folder.parent.name}.json"
        report = labelme_to_coco(folder, out)
        assert not report.errors
        docs, _ = read_labelme_folder(folder)
        data = json.loads(out.read_text())
        assert len(data["images"]) == len(docs)
        cats = {c["name"]: c["id"] for c in data["categories"]}
        assert min(cats.values()) == 1
        ev = _evaluate(out, results_from_docs(docs, [im["id"] for im in data["images"]], cats))
        assert ev.stats[0] == pytest.approx(1.0)
