"""LabelMe JSON: reading every shape type and version, writing files labelme opens unchanged."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.geometry import Polygon, mask_iou, polygons_to_mask
from scubasteve.io import images
from scubasteve.io.labelme import labelme_dict, read_labelme, write_labelme

# The keys labelme's LabelFile.load reads (it raises KeyError when one of the top ones is missing).
LABELME_TOP_KEYS = {
    "version",
    "flags",
    "shapes",
    "imagePath",
    "imageData",
    "imageHeight",
    "imageWidth",
}
LABELME_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}


def _write_image(path: Path, w: int = 64, h: int = 48) -> Path:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    path.write_bytes(images.encode_png(rgb))
    return path


def _ring_mask(h: int = 48, w: int = 64) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[8:40, 10:50] = True
    m[16:30, 20:36] = False
    return m


def test_annotation_with_a_hole_round_trips_through_labelme(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "img.png")
    mask = _ring_mask()
    ann = Annotation.from_mask("donut", mask, source="classic", score=0.875, seconds=3.5)
    doc = ImageDoc(
        image,
        64,
        48,
        [ann, Annotation.from_mask("other", np.pad(np.ones((4, 4), bool), ((2, 42), (2, 58))))],
    )
    out = tmp_path / "img.json"
    write_labelme(doc, out)

    data = json.loads(out.read_text())
    donut_shapes = [s for s in data["shapes"] if s["label"] == "donut"]
    assert len(donut_shapes) == 2  # outline + hole
    assert donut_shapes[0]["group_id"] == donut_shapes[1]["group_id"] is not None
    assert [s["group_id"] for s in data["shapes"] if s["label"] == "other"] == [None]

    back = read_labelme(out)
    assert [a.label for a in back.annotations] == ["donut", "other"]
    donut = back.annotations[0]
    assert len(donut.polygons) == 1 and len(donut.polygons[0].holes) == 1
    assert mask_iou(donut.to_mask(48, 64), mask) == 1.0
    assert (donut.source, donut.score, donut.seconds, donut.id) == ("classic", 0.875, 3.5, ann.id)


def test_written_file_has_exactly_labelmes_keys_and_relative_image_path(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    image = _write_image(tmp_path / "imgs" / "a.png")
    doc = ImageDoc(image, 64, 48, [Annotation.from_mask("cat", _ring_mask())])
    (tmp_path / "ann").mkdir()
    out = tmp_path / "ann" / "a.json"
    write_labelme(doc, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == LABELME_TOP_KEYS
    assert data["imagePath"] == "../imgs/a.png"
    assert data["imageData"] is None
    assert (data["imageWidth"], data["imageHeight"]) == (64, 48)
    for shape in data["shapes"]:
        assert LABELME_SHAPE_KEYS <= set(shape) <= LABELME_SHAPE_KEYS | {"scubasteve"}
        assert shape["shape_type"] == "polygon"
        assert all(isinstance(v, bool) for v in shape["flags"].values())
        assert isinstance(shape["description"], str)
    assert read_labelme(out).path.resolve() == image.resolve()


def test_every_labelme_shape_type_is_read_and_written_back_as_it_was(tmp_path: Path) -> None:
    _write_image(tmp_path / "p.png", 120, 100)
    mask = np.zeros((11, 11), np.uint8)
    mask[2:9, 3:8] = 255
    shapes = [
        {"label": "r", "points": [[10, 10], [30, 20]], "shape_type": "rectangle"},
        {"label": "c", "points": [[60, 50], [70, 50]], "shape_type": "circle"},
        {"label": "p", "points": [[1, 1], [20, 1], [10, 15]], "shape_type": "polygon"},
        {"label": "l", "points": [[5, 5], [50, 60]], "shape_type": "line"},
        {"label": "pt", "points": [[7, 8]], "shape_type": "point"},
        {"label": "ls", "points": [[1, 2], [3, 4], [5, 9]], "shape_type": "linestrip"},
        {
            "label": "m",
            "points": [[80, 70], [90, 80]],
            "shape_type": "mask",
            "mask": base64.b64encode(images.encode_png(np.stack([mask] * 3, -1))).decode(),
        },
    ]
    for s in shapes:
        s.update({"group_id": None, "flags": {}, "description": ""})
    src = tmp_path / "p.json"
    src.write_text(
        json.dumps(
            {
                "version": "5.7.0",
                "flags": {},
                "shapes": shapes,
                "imagePath": "p.png",
                "imageData": None,
                "imageHeight": 100,
                "imageWidth": 120,
            }
        )
    )
    problems: list[Problem] = []
    doc = read_labelme(src, problems)
    assert problems == []
    assert [a.shape_type for a in doc.annotations] == [s["shape_type"] for s in shapes]
    rect, circle, _, line, _, _, masked = doc.annotations
    assert rect.to_mask(100, 120).sum() == 20 * 10
    assert abs(circle.to_mask(100, 120).sum() - np.pi * 100) < 8
    assert not line.has_area
    assert masked.to_mask(100, 120)[72:79, 83:88].all() and masked.to_mask(100, 120).sum() == 35

    out = tmp_path / "out.json"
    write_labelme(doc, out)
    written = json.loads(out.read_text())["shapes"]
    assert [s["shape_type"] for s in written] == [s["shape_type"] for s in shapes]
    for before, after in zip(shapes[:6], written[:6], strict=True):
        assert after["points"] == [[float(x), float(y)] for x, y in before["points"]]
    assert written[6]["points"] == [[80.0, 70.0], [90.0, 80.0]]
    again = read_labelme(out)
    assert np.array_equal(again.annotations[6].to_mask(100, 120), masked.to_mask(100, 120))


def test_old_file_with_embedded_image_and_missing_image_path_loads(tmp_path: Path) -> None:
    rgb = np.full((30, 40, 3), 200, np.uint8)
    data = {
        "version": "3.16.2",
        "flags": {},
        "shapes": [
            {
                "label": "x",
                "line_color": None,
                "fill_color": None,
                "points": [[1, 1], [9, 1], [5, 8]],
            }
        ],
        "lineColor": [0, 255, 0, 128],
        "imagePath": "C:\\Users\\someone\\gone.jpg",
        "imageData": base64.b64encode(images.encode_png(rgb)).decode(),
    }
    src = tmp_path / "old.json"
    src.write_text(json.dumps(data))
    doc = read_labelme(src)
    assert (doc.width, doc.height) == (40, 30)
    assert doc.pixels().shape == (30, 40, 3)
    assert doc.annotations[0].shape_type == "polygon"
    out = tmp_path / "again.json"
    write_labelme(doc, out)
    written = json.loads(out.read_text())
    assert written["imageData"] == data["imageData"]  # nothing of the user's file is dropped
    assert written["lineColor"] == data["lineColor"]
    assert written["shapes"][0]["line_color"] is None


def test_unresolvable_image_path_uses_stored_size_and_reports_it(tmp_path: Path) -> None:
    src = tmp_path / "x.json"
    src.write_text(
        json.dumps(
            {
                "version": "5.0.1",
                "flags": {},
                "shapes": [],
                "imagePath": "missing.jpg",
                "imageData": None,
                "imageHeight": 10,
                "imageWidth": 20,
            }
        )
    )
    problems: list[Problem] = []
    doc = read_labelme(src, problems)
    assert (doc.width, doc.height) == (20, 10)
    assert any("not found" in p.message for p in problems)
    with pytest.raises(InputError, match="not found"):
        doc.pixels()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"label": "a", "points": [[1, 1], [2, 2]], "shape_type": "polygon"}, "at least 3 points"),
        (
            {"label": "a", "points": [[1, 1], [float("nan"), 2], [3, 3]], "shape_type": "polygon"},
            "NaN",
        ),
        ({"label": "a", "points": [[1, 1], [2, 2], [3, 3]], "shape_type": "polygon"}, "zero area"),
        ({"label": "a", "points": [[1, 1], [5, 5]], "shape_type": "hexagon"}, "unknown shape_type"),
        ({"label": "", "points": [[1, 1], [5, 5]], "shape_type": "rectangle"}, "label"),
        ({"label": "a", "points": "nope", "shape_type": "rectangle"}, "points"),
        (
            {"label": "a", "points": [[1, 1], [5, 5]], "shape_type": "rectangle", "group_id": "x"},
            "group_id",
        ),
    ],
)
def test_bad_shapes_are_reported_with_index_and_kept_in_the_file(
    tmp_path: Path, shape: dict, message: str
) -> None:
    image = _write_image(tmp_path / "i.png")
    good = {"label": "ok", "points": [[1, 1], [9, 1], [5, 8]], "shape_type": "polygon"}
    src = tmp_path / "i.json"
    text = json.dumps(
        {
            "version": "5.5.0",
            "flags": {},
            "shapes": [good, shape],
            "imagePath": image.name,
            "imageData": None,
            "imageHeight": 48,
            "imageWidth": 64,
        },
        allow_nan=True,
    )
    src.write_text(text)
    problems: list[Problem] = []
    doc = read_labelme(src, problems)
    assert [a.label for a in doc.annotations] == ["ok"]
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].where == "shapes[1]" and message in errors[0].message
    assert str(src) in str(errors[0])
    write_labelme(doc, src)
    assert len(json.loads(src.read_text())["shapes"]) == 2  # the unreadable shape survives a save


def test_out_of_image_coordinates_are_a_warning(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "i.png")
    src = tmp_path / "i.json"
    src.write_text(
        json.dumps(
            {
                "version": "5.5.0",
                "flags": {},
                "imagePath": image.name,
                "imageData": None,
                "imageHeight": 48,
                "imageWidth": 64,
                "shapes": [
                    {"label": "a", "points": [[-20, 1], [90, 1], [5, 30]], "shape_type": "polygon"}
                ],
            }
        )
    )
    problems: list[Problem] = []
    doc = read_labelme(src, problems)
    assert len(doc.annotations) == 1
    assert [p.severity for p in problems] == ["warning"] and "outside" in problems[0].message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"a": 1}', "no 'shapes'"),
        (b"\xff\xfe\x00bad", "UTF-8"),
        (b'{"shapes": {}}', "must be a list"),
    ],
)
def test_unusable_files_raise_input_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_labelme(src)
    assert info.value.path == src


def test_non_ascii_file_names_work(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "Ünïcødé 画像.png")
    doc = ImageDoc(image, 64, 48, [Annotation.from_mask("ß-label", _ring_mask())])
    out = tmp_path / "Ünïcødé 画像.json"
    write_labelme(doc, out)
    back = read_labelme(out)
    assert back.path.name == image.name and back.annotations[0].label == "ß-label"
    assert back.pixels().shape == (48, 64, 3)


def test_labelme_group_of_parts_keeps_separate_outer_polygons(tmp_path: Path) -> None:
    _write_image(tmp_path / "g.png")
    square = lambda x: [[x, 5], [x + 10, 5], [x + 10, 15], [x, 15]]  # noqa: E731
    shapes = [
        {"label": "car", "points": square(x), "shape_type": "polygon", "group_id": 7}
        for x in (2, 30)
    ]
    src = tmp_path / "g.json"
    src.write_text(
        json.dumps(
            {
                "version": "5.5.0",
                "flags": {},
                "shapes": shapes,
                "imagePath": "g.png",
                "imageData": None,
                "imageHeight": 48,
                "imageWidth": 64,
            }
        )
    )
    (ann,) = read_labelme(src).annotations
    assert len(ann.polygons) == 2 and not any(p.holes for p in ann.polygons)
    assert ann.group_id == 7
    assert polygons_to_mask(ann.polygons, 48, 64).sum() == 200
    data = labelme_dict(read_labelme(src), src)
    assert [s["group_id"] for s in data["shapes"]] == [7, 7]


def test_mask_shape_annotation_written_from_a_patch(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "m.png")
    patch = MaskPatch(np.eye(6, dtype=bool) | np.eye(6, dtype=bool)[::-1], 20, 10)
    ann = Annotation(label="x", polygons=tuple(patch.to_polygons()), mask=patch, shape_type="mask")
    out = tmp_path / "m.json"
    write_labelme(ImageDoc(image, 64, 48, [ann]), out)
    shape = json.loads(out.read_text())["shapes"][0]
    assert shape["shape_type"] == "mask" and shape["points"] == [[20.0, 10.0], [25.0, 15.0]]
    back = read_labelme(out).annotations[0]
    assert np.array_equal(back.to_mask(48, 64), ann.to_mask(48, 64))


def test_polygon_with_holes_written_without_group_gets_a_fresh_group_id(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "h.png")
    outer = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], float)
    hole = np.array([[5, 5], [10, 5], [10, 10], [5, 10]], float)
    taken = Annotation(label="a", polygons=(Polygon(outer),), group_id=3)
    holed = Annotation(label="a", polygons=(Polygon(outer + 30, (hole + 30,)),))
    data = labelme_dict(ImageDoc(image, 64, 48, [taken, holed]), tmp_path / "h.json")
    assert [s["group_id"] for s in data["shapes"]] == [3, 4, 4]


@pytest.mark.shared_data
def test_every_shared_labelme_file_loads(shared_data: Path) -> None:
    files = [
        p
        for p in sorted(shared_data.glob("labelme-*/**/*.json"))
        if "data_dataset_coco" not in str(p)
    ]
    assert len(files) >= 20
    total = 0
    for path in files:
        problems: list[Problem] = []
        doc = read_labelme(path, problems)
        assert not [p for p in problems if p.severity == "error"], problems
        assert doc.width > 0 and doc.height > 0
        assert doc.pixels().shape == (doc.height, doc.width, 3)
        total += len(doc.annotations)
    assert total >= 165
