"""The hand-finishing estimate: vertex fixes to bring a mask to the target IoU, on synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest

from scubasteve.bench.klm import (
    FINISH_OVERHEAD,
    REDRAW_OVERHEAD,
    REDRAW_VERTEX,
    VERTEX_FIX,
    VERTEX_SPACING_PX,
    ObjectActions,
    finishing_seconds,
    human_seconds,
    outline_vertices,
    vertex_fixes,
)


def _square(size: int = 200, x0: int = 50, x1: int = 150) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[x0:x1, x0:x1] = True
    return mask


def test_a_mask_at_the_target_needs_no_fix():
    gt = _square()
    assert vertex_fixes(gt, gt) == 0
    pred = gt.copy()
    pred[50:55, 50:150] = False  # IoU 0.95
    assert vertex_fixes(gt, pred, target=0.90) == 0
    assert vertex_fixes(gt, pred, target=0.99) > 0


def test_a_missed_strip_costs_one_fix_per_spacing_of_the_outline_fixed():
    gt = _square()
    pred = gt.copy()
    pred[50:80, 50:150] = False  # a 100 px long, 30 px deep strip is missed: IoU 0.70
    fixes = vertex_fixes(gt, pred)
    # two thirds of the strip must be fixed for IoU 0.90; half its perimeter is about 130 px
    assert 2 / 3 * 125 / VERTEX_SPACING_PX <= fixes <= 2 / 3 * 135 / VERTEX_SPACING_PX + 1
    assert vertex_fixes(gt, pred, target=1.0) > fixes, "all of it costs more than two thirds"
    shorter = gt.copy()
    shorter[50:90, 50:100] = False  # the same area missed along half the length: fewer fixes
    assert 0 < vertex_fixes(gt, shorter) < fixes


def test_regions_are_fixed_largest_first_until_the_target_is_met():
    gt = _square()
    pred = gt.copy()
    pred[50:80, 50:150] = False  # the large error: fixing it alone reaches the target
    alone = vertex_fixes(gt, pred)
    for k in range(5):  # small extra blobs outside the object
        pred[10:14, 20 * k + 10 : 20 * k + 14] = True
    assert vertex_fixes(gt, pred) == alone, "the small blobs need not be fixed for IoU 0.90"
    assert vertex_fixes(gt, pred, target=1.0) >= alone + 5, "every blob is a fix of its own"


def test_extra_pixels_are_fixed_as_well_as_missed_ones():
    gt = _square()
    pred = gt.copy()
    pred[30:50, 50:150] = True  # 20 px of background above the object: IoU 0.83
    assert vertex_fixes(gt, pred) > 0
    assert vertex_fixes(gt, np.zeros_like(gt)) > 0, "an empty mask is finished by drawing it"


def test_finishing_adds_the_tool_switch_and_the_fixes():
    base = ObjectActions(label_keys=1, pick_keys=1, clicks=2, wait_seconds=0.3)
    finished = ObjectActions(label_keys=1, pick_keys=1, clicks=2, wait_seconds=0.3, vertex_fixes=4)
    assert human_seconds(finished) - human_seconds(base) == pytest.approx(
        FINISH_OVERHEAD + 4 * VERTEX_FIX
    )


def test_finishing_never_costs_more_than_drawing_the_outline_anew():
    gt = _square()
    vertices = outline_vertices(gt)
    assert 400 / VERTEX_SPACING_PX - 1 <= vertices <= 400 / VERTEX_SPACING_PX + 1
    few = ObjectActions(0, 0, 0, 0.0, vertex_fixes=2, outline_vertices=vertices)
    assert finishing_seconds(few) == pytest.approx(FINISH_OVERHEAD + 2 * VERTEX_FIX)
    many = ObjectActions(0, 0, 0, 0.0, vertex_fixes=200, outline_vertices=vertices)
    assert finishing_seconds(many) == pytest.approx(REDRAW_OVERHEAD + vertices * REDRAW_VERTEX)
