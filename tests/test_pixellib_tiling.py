"""Tiled pre-annotation with the real network (random weights, TensorFlow): `detect(size=...)`
reports full-resolution instances, and a tiled run detects each view once and writes shapes in
the image's own pixels. The merge logic itself is tested with a stand-in in test_tiling.py."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import CLASSES, random_maskrcnn_h5
from PIL import Image

from scubasteve.cli import main
from scubasteve.inference.maskrcnn.instances import Instance
from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
from scubasteve.inference.maskrcnn.tiling import plan_views
from scubasteve.inference.preannotation import annotate_images
from scubasteve.io.json_files import read_json
from scubasteve.io.labelme import read_labelme

pytestmark = pytest.mark.slow


def _image(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    image[h // 6 : h // 2, w // 5 : w // 2] = (200, 60, 40)
    image[h // 2 : 5 * h // 6, w // 2 : 4 * w // 5] = (40, 180, 90)
    return image


@pytest.fixture(scope="module")
def segmenter() -> InstanceSegmenter:
    seg = InstanceSegmenter(random_maskrcnn_h5(), speed=256, min_score=0.0, device="cpu")
    seg.load()
    yield seg
    seg.close()


def test_detections_of_a_shrunk_copy_come_back_in_the_full_image_s_pixels(
    segmenter: InstanceSegmenter,
) -> None:
    small = _image(120, 160)
    own = segmenter.detect(small)
    full = segmenter.detect(small, size=(480, 640))  # small is the 640x480 image shrunk 4x
    assert own and len(full) == len(own)
    for a, b in zip(own, full, strict=True):
        assert (a.label, a.score) == (b.label, b.score)
        # The same detection, its box in the large image's pixels (rounding: a pixel or two).
        assert abs(4 * a.box.x0 - b.box.x0) <= 4 and abs(4 * a.box.y1 - b.box.y1) <= 4
        assert 0 <= b.box.x0 < b.box.x1 <= 640 and 0 <= b.box.y0 < b.box.y1 <= 480
        # Its mask is a box-local patch at that resolution, not a full-image array.
        assert b.patch.box().x0 >= b.box.x0 and b.patch.box().x1 <= b.box.x1
        assert b.patch.box().y0 >= b.box.y0 and b.patch.box().y1 <= b.box.y1


class _Counting:
    """The segmenter, counting what it is asked to detect."""

    def __init__(self, inner: InstanceSegmenter) -> None:
        self.inner, self.speed = inner, inner.speed
        self.path, self.min_score, self.classes = inner.path, inner.min_score, inner.classes
        self.calls: list[tuple[tuple[int, ...], tuple[int, int] | None]] = []

    def detect_async(
        self, rgb: np.ndarray, size: tuple[int, int] | None = None
    ) -> concurrent.futures.Future[list[Instance]]:
        self.calls.append((rgb.shape, size))
        return self.inner.detect_async(rgb, size)


def test_a_tiled_run_detects_each_view_once_and_writes_shapes_in_image_pixels(
    segmenter: InstanceSegmenter, tmp_path: Path
) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(_image(400, 600)).save(path)
    counting = _Counting(segmenter)
    views: list[tuple[int, int]] = []
    summary = annotate_images(
        [(path, tmp_path / "wide.json")],
        counting,
        tile=256,
        view_progress=lambda d, t: views.append((d, t)),
    )
    plan = plan_views(600, 400, 256, 256)
    assert len(plan) == 7 and views[-1] == (7, 7)
    assert counting.calls[0] == ((171, 256, 3), (400, 600))  # the whole image, shrunk
    assert [c[0][:2] for c in counting.calls[1:]] == [(v.height, v.width) for v in plan[1:]]
    assert summary.written == [path] and not summary.failed
    doc = read_labelme(tmp_path / "wide.json")
    assert doc.annotations and {a.label for a in doc.annotations} <= set(CLASSES)
    for a in doc.annotations:
        box = a.bounds()
        assert 0 <= box.x0 < box.x1 <= 600 and 0 <= box.y0 < box.y1 <= 400


def test_annotate_records_the_tile_setting_it_ran_with(tmp_path: Path) -> None:
    Image.fromarray(_image(300, 400)).save(tmp_path / "a.png")
    model = str(random_maskrcnn_h5())
    args = ["annotate", str(tmp_path), "--model", model, "--speed", "256", "--min-score", "0"]
    assert main([*args, "--tile", "off"]) == 0
    assert read_json(tmp_path / "a.json")["scubasteve_preannotation"]["tile"] == "off"
    assert main([*args, "--tile", "256", "--overwrite"]) == 0
    assert read_json(tmp_path / "a.json")["scubasteve_preannotation"]["tile"] == 256
