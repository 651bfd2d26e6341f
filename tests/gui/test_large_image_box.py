"""A box dragged on a 12,000 x 9,000 image in the window (issue 22, item 7): the request, the
engine and the drawables of its ten proposals allocate what the box needs, not the image."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from helpers.gui_input import drag_box
from helpers.proposals import disc_scene
from PIL import Image

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.gui.render import PROPOSAL_RGB, proposal_thumbnail
from scubasteve.inference.classic import ClassicProposer

pytestmark = pytest.mark.gui

MB = 2**20


@pytest.mark.slow
def test_a_box_on_a_12000_by_9000_image_allocates_what_its_crop_needs(make_window, tmp_path, qtbot):
    folder = tmp_path / "huge"
    folder.mkdir()
    image, _ = disc_scene(h=9000, w=12000, centre=(6000, 4500), radius=3000, seed=2)
    Image.fromarray(image).save(folder / "huge.jpg", quality=90)
    del image
    window = make_window(folder, ClassicProposer(), wait_image=False)
    qtbot.waitUntil(lambda: window.annotator.entry is not None, timeout=60000)
    assert window.engine.wait_idle(60000)  # the engine has taken the image (set_image)
    peaks = []
    for box in (Box(5400, 4300, 6000, 4700), Box(2000, 2000, 2600, 2400)):
        window.proposals.discard()
        tracemalloc.start()
        try:
            drag_box(window, box)
            qtbot.waitUntil(
                lambda: window.proposals.result is not None and not window.proposals.result.partial,
                timeout=60000,
            )
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert len(window.proposals.result.views) >= 5
    print("Python-side peak per box (MB):", [round(p / MB, 1) for p in peaks])
    assert max(peaks) < 64 * MB  # the image alone is 309 MB, its display pyramid 103 MB more


def _thumbnail_as_before(image: np.ndarray, patch: MaskPatch, box: Box) -> np.ndarray:
    """The thumbnail as it was made before: the mask pasted into a region-size array first."""
    ih, iw = image.shape[:2]
    region = box.grow(0.1).clip(iw, ih)
    x0, y0 = int(region.x0), int(region.y0)
    x1, y1 = max(x0 + 1, int(np.ceil(region.x1))), max(y0 + 1, int(np.ceil(region.y1)))
    scale = 96 / max(x1 - x0, y1 - y0)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    crop = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    full = patch.to_full(ih, iw)[y0:y1, x0:x1].astype(np.uint8)
    m = cv2.resize(full, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    out = crop.astype(np.float32)
    out[m] = out[m] * 0.45 + np.array(PROPOSAL_RGB, np.float32) * 0.55
    out[~m] *= 0.6
    return out.astype(np.uint8)


def test_thumbnails_sample_the_patch_directly_with_the_same_pixels_as_before(qtbot):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (700, 900, 3), dtype=np.uint8)
    for _ in range(30):
        x0, y0 = int(rng.integers(-50, 800)), int(rng.integers(-50, 600))
        w, h = int(rng.integers(1, 400)), int(rng.integers(1, 300))
        patch = MaskPatch(rng.random((h, w)) > 0.4, x0, y0)
        bx0, by0 = max(0, x0 + 3), max(0, y0 + 2)
        bx1, by1 = min(900, x0 + w + 5), min(700, y0 + h + 1)
        if bx1 - bx0 < 1 or by1 - by0 < 1:
            continue
        box = Box(bx0, by0, bx1, by1)
        thumb = proposal_thumbnail(image, patch, box)
        got = (
            np.frombuffer(thumb.constBits(), np.uint8)
            .reshape(thumb.height(), thumb.bytesPerLine())[:, : thumb.width() * 3]
            .reshape(thumb.height(), thumb.width(), 3)
        )
        assert np.array_equal(got, _thumbnail_as_before(image, patch, box))


def test_bench_large_image_measures_the_window_too(capsys, qtbot):
    from scubasteve.cli import main

    assert main(["bench", "large-image", "--window", "--size", "800x600"]) == 0
    out = capsys.readouterr().out
    assert "classic in the window: 800x600 image" in out
    assert "| 600x400 box (dragged) |" in out and "proposals shown" in out
    assert "no answer" not in out
