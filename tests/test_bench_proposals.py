"""`scubasteve bench proposals` end to end on a tiny synthetic COCO set, and its building blocks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers.proposals import textured_background
from PIL import Image

from scubasteve.bench.proposals import EngineReport, evaluate_proposer, format_table
from scubasteve.bench.samples import load_coco_samples, load_labelme_samples
from scubasteve.cli import main
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Polygon, mask_iou, polygons_to_mask

SIZE = (180, 260)


def circle(cx: float, cy: float, r: float, n: int = 48) -> list[float]:
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n
        pts += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return pts


def write_coco(folder: Path) -> Path:
    """Two images with three objects (two discs, one rectangle) and matching COCO polygons."""
    images_dir = folder / "images"
    images_dir.mkdir()
    objects = {
        1: [circle(80, 70, 35), [150, 40, 220, 40, 220, 120, 150, 120]],
        2: [circle(120, 100, 50)],
    }
    colours = [(200, 40, 40), (40, 40, 210)]
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    ann_id = 10
    for image_id, polys in objects.items():
        image = textured_background(180, 260, seed=image_id)
        for i, poly in enumerate(polys):
            mask = polygons_to_mask([Polygon(np.reshape(poly, (-1, 2)))], 180, 260)
            image[mask] = colours[i % 2]
            ys, xs = np.nonzero(mask)
            coco["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": [poly],
                    "area": float(mask.sum()),
                    "bbox": [
                        float(xs.min()),
                        float(ys.min()),
                        float(np.ptp(xs) + 1),
                        float(np.ptp(ys) + 1),
                    ],
                    "iscrowd": 0,
                }
            )
            ann_id += 1
        name = f"img{image_id}.png"
        Image.fromarray(image).save(images_dir / name)
        coco["images"].append({"id": image_id, "file_name": name, "width": 260, "height": 180})
    path = folder / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def test_bench_proposals_prints_a_table_and_writes_rescorable_rle(tmp_path, capsys):
    coco_path = write_coco(tmp_path)
    out = tmp_path / "pred.json"
    rc = main(
        [
            "bench", "proposals", "--coco", str(coco_path), "--images", str(tmp_path / "images"),
            "--engine", "classic", "--engine", "box", "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    table = capsys.readouterr().out
    assert "| classic | 3 |" in table and "| box | 3 |" in table

    from pycocotools import mask as mask_utils

    data = json.loads(out.read_text())
    gt = json.loads(coco_path.read_text())
    truth = {
        str(a["id"]): polygons_to_mask(
            [Polygon(np.reshape(a["segmentation"][0], (-1, 2)))], 180, 260
        )
        for a in gt["annotations"]
    }
    for engine in ("classic", "box"):
        entry = data["engines"][engine]
        assert set(entry["instances"]) == set(truth)
        tops = []
        for ann_id, inst in entry["instances"].items():
            assert len(inst["box_xyxy"]) == 4 and inst["all_s"] >= inst["first_s"] >= 0
            ious = []
            for p in inst["proposals"]:
                decoded = mask_utils.decode(p["segmentation"]).astype(bool)
                ious.append(mask_iou(decoded, truth[ann_id]))
                assert ious[-1] == pytest.approx(p["iou"], abs=1e-9)
                assert p["source"].startswith(engine)
            tops.append(ious[0])
        assert np.mean(tops) == pytest.approx(entry["summary"]["mean_iou_top"], abs=1e-9)
    assert data["engines"]["classic"]["summary"]["mean_iou_top"] > 0.85
    assert (
        data["engines"]["classic"]["summary"]["mean_iou_top"]
        > data["engines"]["box"]["summary"]["mean_iou_top"]
    )


def test_bench_limit_and_image_ids_select_instances(tmp_path):
    coco_path = write_coco(tmp_path)
    images = load_coco_samples(coco_path, tmp_path / "images", limit=2)
    assert sum(len(si.samples) for si in images) == 2
    images = load_coco_samples(coco_path, tmp_path / "images", image_ids=[2])
    assert [s.key for si in images for s in si.samples] == ["12"]


def test_bench_with_nothing_to_evaluate_is_a_clear_error(tmp_path, capsys):
    coco_path = write_coco(tmp_path)
    rc = main(
        ["bench", "proposals", "--coco", str(coco_path), "--images", str(tmp_path / "images"),
         "--min-area", "1e9"]
    )  # fmt: skip
    assert rc == 2
    assert "no instances to evaluate" in capsys.readouterr().err


def test_a_file_that_is_not_coco_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a COCO instances file"):
        load_coco_samples(bad, tmp_path)


class Silent:
    """An engine that never finds anything."""

    name = "silent"

    def set_image(self, image):
        pass

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
        return []


def test_an_object_without_proposals_counts_as_zero(tmp_path):
    coco_path = write_coco(tmp_path)
    report = evaluate_proposer(Silent(), load_coco_samples(coco_path, tmp_path / "images"))
    assert report.count == 3
    assert report.mean_top_iou == 0.0 and report.mean_best_iou == 0.0
    assert report.share_best_at_least(0.85) == 0.0
    assert "| silent | 3 | 0.000 | 0.000 |" in format_table([report])


def test_empty_report_prints_without_crashing():
    assert "| none | 0 |" in format_table([EngineReport("none")])


def test_labelme_samples_merge_shapes_of_one_group(tmp_path):
    image = textured_background(100, 120)
    Image.fromarray(image).save(tmp_path / "a.png")
    shapes = [
        {"label": "person", "points": [[10, 10], [40, 10], [40, 40]], "shape_type": "polygon",
         "group_id": 1},
        {"label": "person", "points": [[50, 50], [80, 50], [80, 80]], "shape_type": "polygon",
         "group_id": 1},
        {"label": "dog", "points": [[60, 10], [90, 10], [90, 30], [60, 30]],
         "shape_type": "polygon", "group_id": None},
        {"label": "dog", "points": [[5, 90]], "shape_type": "point", "group_id": None},
    ]  # fmt: skip
    doc = {"shapes": shapes, "imagePath": "a.png", "imageHeight": 100, "imageWidth": 120}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    images = load_labelme_samples(tmp_path)
    assert len(images) == 1
    samples = images[0].samples
    assert len(samples) == 2  # the two person parts are one object; the point is not an area
    person = samples[0]
    assert person.gt.box().x0 < 15 and person.gt.box().x1 > 75  # spans both parts
    assert images[0].load().shape == (100, 120, 3)


def test_bench_reads_a_labelme_folder(tmp_path, capsys):
    image = textured_background(*SIZE, seed=5)
    poly = np.reshape(circle(120, 90, 40), (-1, 2))
    image[polygons_to_mask([Polygon(poly)], *SIZE)] = (30, 30, 220)
    Image.fromarray(image).save(tmp_path / "b.png")
    shape = {"label": "ball", "points": poly.tolist(), "shape_type": "polygon", "group_id": None}
    doc = {"shapes": [shape], "imagePath": "b.png", "imageHeight": SIZE[0], "imageWidth": SIZE[1]}
    (tmp_path / "b.json").write_text(json.dumps(doc))
    assert main(["bench", "proposals", "--labelme", str(tmp_path), "--engine", "classic"]) == 0
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| classic")
    )
    assert float(row.split("|")[3]) > 0.85  # mean IoU of the top-ranked proposal


def test_bench_refuses_labelme_and_coco_together(tmp_path, capsys):
    coco_path = write_coco(tmp_path)
    rc = main(["bench", "proposals", "--labelme", str(tmp_path), "--coco", str(coco_path)])
    assert rc == 2
    assert "either --labelme or --coco" in capsys.readouterr().err
