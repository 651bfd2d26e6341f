"""Hostile and broken LabelMe files (issue 16): each bad shape is that shape's problem, with the
reason; the file and the batch go on; whatever is read can be written back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scubasteve.core.errors import InputError, Problem
from scubasteve.io import images
from scubasteve.io.dataset import validate_labelme_folder
from scubasteve.io.labelme import read_labelme, write_labelme

W, H = 40, 30
GOOD = {"label": "a", "points": [[2, 2], [20, 2], [20, 20]], "shape_type": "polygon"}


def _file(folder: Path, stem: str, shapes: list, **top: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.png").write_bytes(images.encode_png(np.zeros((H, W, 3), np.uint8)))
    data = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.png"}
    data.update({"imageData": None, "imageHeight": H, "imageWidth": W, **top})
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(data))
    return path


def _read(path: Path) -> tuple[int, list[Problem]]:
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    return len(doc.annotations), problems


def _shape(points: object, shape_type: str = "polygon") -> dict:
    return {"label": "x", "points": points, "shape_type": shape_type}


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        (_shape([[0, 0], [1e8, 0], [0, 10]]), "far outside"),
        (_shape([[0, 0], [1e308, 0], [0, 10]]), "far outside"),
        (_shape([[10, 10], [1e308, 10]], "circle"), "far outside"),
        (_shape([[0, 0], [10**400, 0], [0, 10]]), "floating-point range"),
        (_shape([[0, 0], [5, 5], [0, 0]]), "3 distinct points"),
        (_shape([["10", "1e2"], [5, 5], [0, 9]]), "number pairs"),
        (_shape([[True, 1], [5, 5], [0, 9]]), "number pairs"),
        (_shape([[0, 0], [5, 5], [10, 10]]), "on a line"),
    ],
)
def test_bad_shape_is_refused_with_its_reason_and_the_rest_is_read(
    tmp_path: Path, shape: dict, reason: str
) -> None:
    path = _file(tmp_path, "a", [GOOD, shape])
    count, problems = _read(path)
    assert count == 1
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].where == "shapes[1]" and reason in errors[0].message


def test_half_a_million_vertex_polygon_is_refused_quickly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _file(tmp_path, "a", [GOOD, _shape(rng.uniform(0, 30, (500_000, 2)).tolist())])
    count, problems = _read(path)
    assert count == 1 and "at most 100,000" in str(problems)


def test_bowtie_is_kept_with_the_self_intersection_warning(tmp_path: Path) -> None:
    path = _file(tmp_path, "a", [_shape([[0, 0], [10, 10], [10, 0], [0, 10]])])
    count, problems = _read(path)
    assert count == 1
    assert [p.severity for p in problems] == ["warning"]
    assert "self-intersecting" in problems[0].message


def test_deeply_nested_json_is_that_files_problem_and_the_batch_goes_on(tmp_path: Path) -> None:
    _file(tmp_path, "good", [GOOD])
    (tmp_path / "deep.json").write_text("[" * 100_000)
    report = validate_labelme_folder(tmp_path)
    assert report.annotations == 1
    assert any("nested" in p.message and p.path.name == "deep.json" for p in report.errors)


def test_non_finite_flags_and_extras_are_reported_and_the_file_saves(tmp_path: Path) -> None:
    shape = {**GOOD, "extra_key": float("nan")}
    path = _file(tmp_path, "a", [shape], flags={"ok": True, "bad": float("nan")}, more=[1e999])
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    assert len([p for p in problems if p.severity == "warning"]) == 3
    write_labelme(doc, path)  # raised "Out of range float values are not JSON compliant"
    again = json.loads(path.read_text())
    assert again["flags"] == {"ok": True} and again["more"] == [None]
    assert again["shapes"][0]["extra_key"] is None


def test_sub_pixel_shapes_survive_being_written_and_read_back(tmp_path: Path) -> None:
    tiny = _shape([[5, 5], [5.0002, 5], [5, 5.0002]])
    dot = _shape([[5, 5], [5.0001, 5]], "circle")
    path = _file(tmp_path, "a", [tiny, dot])
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    assert len(doc.annotations) == 2 and not problems
    write_labelme(doc, path)
    count, problems = _read(path)
    assert count == 2 and not problems


def test_huge_stored_image_size_without_the_image_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, "a", [GOOD], imageWidth=10**12, imageHeight=10**12)
    (tmp_path / "a.png").unlink()
    with pytest.raises(InputError, match="imageWidth"):
        read_labelme(path, [])


def test_animated_gif_is_named_as_unsupported_not_missing(tmp_path: Path) -> None:
    path = _file(tmp_path, "a", [GOOD], imagePath="a.gif")
    (tmp_path / "a.png").unlink()
    frames = [Image.new("RGB", (W, H), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    _, problems = _read(path)
    text = " ".join(p.message for p in problems)
    assert "a.gif exists" in text and ".gif is not an image type" in text
    assert "not found" not in text


@pytest.mark.parametrize("command", ["validate", "convert"])
def test_cli_does_not_crash_on_huge_coordinates(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "in"
    far = [_shape([[0, 0], [v, 0], [0, 10]]) for v in (1e7, 1e8, 1e308)]
    _file(folder, "a", [GOOD, *far, _shape([[10, 10], [1e308, 10]], "circle")])
    _file(folder, "b", [GOOD])
    args = [str(folder)] + ([str(tmp_path / "out.json")] if command == "convert" else [])
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", command, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # some shapes failed; was 139 (segfault) or 0
    assert "far outside" in done.stdout + done.stderr
    if command == "convert":
        assert len(json.loads((tmp_path / "out.json").read_text())["annotations"]) == 2


def test_self_intersecting_ring_in_a_group_is_not_made_valid(tmp_path: Path) -> None:
    # shapely's make_valid took about 8 minutes (loaded machine) for this 500-vertex ring
    ring = np.random.default_rng(0).uniform(0, 30, (500, 2)).tolist()
    square = [[1, 1], [5, 1], [5, 5], [1, 5]]
    shapes = [{**_shape(ring), "group_id": 1}, {**_shape(square), "group_id": 1}]
    path = _file(tmp_path, "a", shapes)
    t0 = time.perf_counter()
    problems: list[Problem] = []
    doc = read_labelme(path, problems)
    assert time.perf_counter() - t0 < 30  # a bound against the hang, not a timing
    assert len(doc.annotations) == 1 and len(doc.annotations[0].polygons) == 2
    assert "self-intersecting" in str(problems)


def test_mask_shape_far_larger_than_the_image_is_refused_before_decoding(tmp_path: Path) -> None:
    import base64

    png = images.encode_png(np.full((3 * H + 1, 10, 3), 255, np.uint8))
    mask = {**_shape([[0, 0], [9, 10]], "mask"), "mask": base64.b64encode(png).decode()}
    count, problems = _read(_file(tmp_path, "a", [GOOD, mask]))
    assert count == 1 and "larger than three times" in str(problems)


# --- issue 21 -----------------------------------------------------------------------------------


def _embedded(rgb: np.ndarray, fmt: str = "PNG") -> str:
    import base64
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=95)
    return base64.b64encode(buf.getvalue()).decode()


def test_image_data_of_another_size_than_the_image_file_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, "a", [GOOD], imageData=_embedded(np.zeros((10, 20, 3), np.uint8)))
    with pytest.raises(InputError, match=r"imageData is a 20x10 image.*a\.png.*40x30"):
        read_labelme(path, [])
    _file(tmp_path, "b", [GOOD])
    report = validate_labelme_folder(tmp_path)
    assert [p.path.name for p in report.errors] == ["a.json"] and report.annotations == 1


def test_image_data_that_is_another_picture_fails_validate(tmp_path: Path) -> None:
    other = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    _file(tmp_path, "a", [GOOD], imageData=_embedded(other))
    report = validate_labelme_folder(tmp_path)
    assert len(report.errors) == 1 and "different picture" in report.errors[0].message


def test_image_data_that_is_the_image_passes_even_re_encoded(tmp_path: Path) -> None:
    y, x = np.mgrid[0:H, 0:W]
    photo = np.dstack([x * 6, y * 8, (x + y) * 3]).astype(np.uint8)  # gradients and edges
    photo[5:20, 10:25] = (250, 30, 40)
    for stem, fmt in (("a", "PNG"), ("b", "JPEG")):
        _file(tmp_path, stem, [GOOD], imageData=_embedded(photo, fmt))
        (tmp_path / f"{stem}.png").write_bytes(images.encode_png(photo))
    assert not validate_labelme_folder(tmp_path).problems
