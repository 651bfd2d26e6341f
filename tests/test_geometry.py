"""Mask <-> polygon conversion: exact, valid, simplified within tolerance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scubasteve.core.geometry import (
    DEFAULT_TOLERANCE,
    Box,
    Polygon,
    mask_bbox,
    mask_iou,
    mask_to_polygons,
    polygons_to_mask,
)

SIZE = 96


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    """Random blobs, rings, thin structures and multi-part masks, objects at least ~32 px across."""
    kind = draw(st.sampled_from(["blob", "ring", "thin", "multi", "noisy"]))
    m = np.zeros((SIZE, SIZE), np.uint8)
    cx, cy = draw(st.integers(34, SIZE - 34)), draw(st.integers(34, SIZE - 34))
    if kind in ("blob", "noisy"):
        for _ in range(draw(st.integers(1, 4))):
            ax, ay = draw(st.integers(16, 30)), draw(st.integers(16, 30))
            angle = draw(st.integers(0, 179))
            dx, dy = draw(st.integers(-6, 6)), draw(st.integers(-6, 6))
            cv2.ellipse(m, (cx + dx, cy + dy), (ax, ay), angle, 0, 360, 1, -1)
        if kind == "noisy":
            seed = draw(st.integers(0, 2**31 - 1))
            noise = np.random.default_rng(seed).random((SIZE, SIZE)) < 0.08
            m[noise & (cv2.dilate(m, np.ones((5, 5), np.uint8)) > 0)] ^= 1
    elif kind == "ring":
        outer = draw(st.integers(18, 30))
        cv2.circle(m, (cx, cy), outer, 1, -1)
        cv2.circle(m, (cx, cy), draw(st.integers(4, outer - 4)), 0, -1)
    elif kind == "thin":
        cv2.circle(m, (cx, cy), draw(st.integers(16, 28)), 1, -1)
        m[draw(st.integers(0, SIZE - 1)), :] = 1  # a one-pixel line through the image
        m[:, draw(st.integers(0, SIZE - 1))] = 1
    else:
        cv2.rectangle(m, (2, 2), (40, 40), 1, -1)
        cv2.circle(m, (70, 70), draw(st.integers(10, 24)), 1, -1)
        m[50, 50] = 1  # an isolated pixel
        m[0, SIZE - 1] = 1  # a corner pixel, diagonal-touching nothing
    return m.astype(bool)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks())
def test_exact_outline_round_trip_is_lossless(mask: np.ndarray) -> None:
    polys = mask_to_polygons(mask, tolerance=0.0)
    back = polygons_to_mask(polys, *mask.shape)
    assert np.array_equal(back, mask)
    assert sum(p.area for p in polys) == pytest.approx(mask.sum())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks(), st.sampled_from([0.5, DEFAULT_TOLERANCE]))
def test_default_simplification_keeps_iou_at_least_099(mask: np.ndarray, tol: float) -> None:
    polys = mask_to_polygons(mask, tolerance=tol)
    back = polygons_to_mask(polys, *mask.shape)
    assert mask_iou(back, mask) >= 0.99


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks(), st.sampled_from([0.0, DEFAULT_TOLERANCE, 2.0, 4.0]))
def test_polygons_are_never_self_intersecting_or_degenerate(mask: np.ndarray, tol: float) -> None:
    polys = mask_to_polygons(mask, tolerance=tol)
    assert polys, "a non-empty mask gives at least one polygon"
    for p in polys:
        shp = p.to_shapely()
        assert shp.is_valid, shapely.is_valid_reason(shp)
        assert shp.area > 0
        assert len(p.exterior) >= 3
        assert all(len(h) >= 3 and shapely.Polygon(h).area > 0 for h in p.holes)
    # Parts do not overlap each other.
    union_area = shapely.union_all([p.to_shapely() for p in polys]).area
    assert union_area == pytest.approx(sum(p.area for p in polys))


def test_simplification_reduces_vertices_of_a_disk() -> None:
    m = np.zeros((200, 200), np.uint8)
    cv2.circle(m, (100, 100), 80, 1, -1)
    exact = mask_to_polygons(m.astype(bool), tolerance=0.0)[0]
    simple = mask_to_polygons(m.astype(bool))[0]
    assert len(simple.exterior) < len(exact.exterior) * 0.75


def test_larger_tolerance_means_fewer_vertices() -> None:
    m = np.zeros((200, 200), np.uint8)
    cv2.ellipse(m, (100, 100), (80, 50), 30, 0, 360, 1, -1)
    counts = [
        len(mask_to_polygons(m.astype(bool), tolerance=t)[0].exterior) for t in (1.0, 2.0, 4.0)
    ]
    assert counts[0] > counts[1] > counts[2]


def test_ring_has_one_hole_and_one_pixel_line_survives() -> None:
    m = np.zeros((64, 64), bool)
    m[10:50, 10:50] = True
    m[20:40, 20:40] = False
    m[60, 5:60] = True
    polys = mask_to_polygons(m)
    assert len(polys) == 2
    assert len(polys[0].holes) == 1
    line = polygons_to_mask([polys[1]], 64, 64)
    assert line.sum() == 55 and line[60, 5:60].all()


def test_offset_moves_polygons_into_image_coordinates() -> None:
    m = np.ones((4, 6), bool)
    (p,) = mask_to_polygons(m, offset=(10.0, 20.0))
    assert p.bounds() == Box(10, 20, 16, 24)


def test_pixel_edge_convention_matches_mask_bbox() -> None:
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    assert mask_bbox(m) == Box(3, 2, 7, 5)
    (p,) = mask_to_polygons(m)
    assert p.bounds() == Box(3, 2, 7, 5)


def test_empty_mask_gives_no_polygons() -> None:
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
    assert mask_bbox(np.zeros((5, 5), bool)) is None


def test_bad_arguments_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="2-D"):
        mask_to_polygons(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="tolerance"):
        mask_to_polygons(np.zeros((2, 2), bool), tolerance=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        Box(0, 0, float("nan"), 1)
    with pytest.raises(ValueError, match="x0 <= x1"):
        Box(5, 0, 1, 1)


def test_holes_cut_out_pixels_when_rasterising() -> None:
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    hole = np.array([[3, 3], [7, 3], [7, 7], [3, 7]], float)
    mask = polygons_to_mask([Polygon(outer, (hole,))], 12, 12)
    assert mask.sum() == 100 - 16
    assert not mask[5, 5] and mask[1, 1]


def test_box_helpers() -> None:
    b = Box.from_points(10, 20, 0, 0)
    assert b == Box(0, 0, 10, 20)
    assert b.grow(0.1) == Box(-1, -2, 11, 22)
    assert b.clip(5, 5) == Box(0, 0, 5, 5)
    assert b.iou(b) == 1.0
    assert Box(0, 0, 1, 1).iou(Box(2, 2, 3, 3)) == 0.0
    rows, cols = Box(0.2, 0.2, 2.6, 3.4).pixel_slices(10, 10)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 3, 0, 3)
