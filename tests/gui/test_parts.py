"""Small parts of the GUI on their own: the image list model, the pyramid, overlays, workers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from scubasteve.gui.canvas.pyramid import build_pyramid
from scubasteve.gui.image_list import ImageListModel, RowState
from scubasteve.gui.render import OVERLAY_MAX_SIDE, mask_overlay

pytestmark = pytest.mark.gui


def test_image_list_counts_and_finds_rows_by_state(qtbot):
    model = ImageListModel()
    paths = [Path(f"/x/{i}.png") for i in range(6)]
    states = [
        RowState.DONE,
        RowState.TODO,
        RowState.DONE,
        RowState.TODO,
        RowState.TODO,
        RowState.DONE,
    ]
    model.reset(paths, [p.name for p in paths], states)
    assert model.summary() == "3 of 6 done"
    model.set_state(1, RowState.UNREADABLE, "broken")
    assert model.count(RowState.TODO) == 2 and model.count(RowState.UNREADABLE) == 1
    assert "1 unreadable image" in model.summary()
    assert model.find(0, 1, (RowState.TODO,)) == 3
    assert model.find(5, -1, (RowState.TODO,)) == 4
    assert model.find(4, 1, (RowState.TODO,)) == -1
    assert model.row_of(Path("/x/4.png")) == 4 and model.row_of(Path("/y.png")) == -1
    assert "broken" in model.data(model.index(1), 3)  # tooltip role


def test_pyramid_halves_until_the_longer_side_fits():
    levels = build_pyramid(np.zeros((3000, 5000, 3), np.uint8))
    assert [lv.shape[:2] for lv in levels] == [(3000, 5000), (1500, 2500), (750, 1250), (375, 625)]
    assert len(build_pyramid(np.zeros((100, 80, 3), np.uint8))) == 1


def test_large_mask_overlays_are_reduced(qtbot):
    mask = np.zeros((4000, 3000), bool)
    mask[100:200, 100:200] = True
    image = mask_overlay(mask, (255, 0, 0))
    assert max(image.width(), image.height()) == OVERLAY_MAX_SIDE
    small = mask_overlay(mask[:50, :40], (255, 0, 0))
    assert (small.width(), small.height()) == (40, 50)


def test_job_results_arrive_on_the_gui_thread(qtbot):
    from scubasteve.gui.workers import make_pool, submit

    pool = make_pool("work")
    seen: list[tuple[object, bool]] = []
    main = threading.get_ident()
    submit(
        pool,
        lambda: threading.get_ident(),
        on_done=lambda r: seen.append((r, threading.get_ident() == main)),
    )
    submit(
        pool,
        lambda: 1 / 0,
        on_error=lambda e: seen.append((type(e), threading.get_ident() == main)),
    )
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    results = dict(seen)
    assert results[ZeroDivisionError] is True
    worker_id = next(r for r in results if isinstance(r, int))
    assert worker_id != main and results[worker_id] is True
