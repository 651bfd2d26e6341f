"""Pre-annotating a large image in the window: tiled, with the dock counting tiles (issue 22, 7)."""

from __future__ import annotations

import pytest
from helpers.blobs import RED, BlobDetector, scene
from PIL import Image

from scubasteve.core.geometry import Box
from scubasteve.inference.maskrcnn.tiling import AUTO_FROM, plan_views

pytestmark = pytest.mark.gui


def test_a_large_image_is_pre_annotated_tile_by_tile_with_the_tiles_counted(
    make_window, tmp_path, qtbot
):
    folder = tmp_path / "wide"
    folder.mkdir()
    width, height = AUTO_FROM + 200, 600
    Image.fromarray(scene(width, height, [(Box(1000, 200, 1100, 260), RED)])).save(
        folder / "wide.png"
    )
    window = make_window(folder)
    detector = BlobDetector(speed=1024, min_side=30)  # the whole image shrunk shows it 23 px wide
    window.preannotate.set_factory(lambda: detector)
    tiles: list[tuple[int, int]] = []
    formats: list[str] = []
    window.preannotate.view_progress.connect(lambda d, t: tiles.append((d, t)))
    window.preannotate.view_progress.connect(
        lambda d, t: formats.append(window.preannotate_panel.progress.format())
    )
    window.preannotate.run_image(window.annotator.entry)
    qtbot.waitUntil(lambda: not window.preannotate.running, timeout=10000)
    n = len(plan_views(width, height, 1024))
    assert n > 2 and tiles == [(i, n) for i in range(1, n + 1)]
    assert formats[-1] == f"image 1 / 1: tile {n} / {n}"
    (shape,) = window.documents.current.doc.annotations  # added to the open image, for review
    assert shape.label == "fig" and shape.bounds() == Box(1000, 200, 1100, 260)
