"""The hand-finishing estimate: vertex fixes to bring a mask to the target IoU, on synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest

from scubasteve.bench.klm import (
    FINISH_OVERHEAD,
    VERTEX_FIX,
    VERTEX_SPACING_PX,
    ObjectActions,
    human_seconds,
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


def test_a_missed_strip_costs_one_fix_per_spacing_of_its_length():
    gt = _square()
    pred = gt.copy()
    pred[50:70, 50:150] = False  # a 100 px long, 20 px deep strip is missed: IoU 0.80
    fixes = vertex_fixes(gt, pred)
    # half the strip's perimeter is about its length plus its depth: 120 px
    assert 100 / VERTEX_SPACING_PX <= fixes <= 125 / VERTEX_SPACING_PX + 1
    shorter = gt.copy()
    shorter[50:80, 50:100] = False  # half as long, deeper (IoU 0.85): fewer fixes
    assert 0 < vertex_fixes(gt, shorter) < fixes


def test_regions_are_fixed_largest_first_until_the_target_is_met():
    gt = _square()
    pred = gt.copy()
    pred[50:70, 50:150] = False  # the large error: fixing it alone reaches the target
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
