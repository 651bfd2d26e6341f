"""Hostile inputs to the geometry core (issue 16): huge, non-finite and oversized shapes.

Every case must end in a result or the project's own error, quickly and without a large allocation;
before the fixes these crashed the process (pycocotools) or used gigabytes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from scubasteve.core.clipping import (
    MAX_OUTLINE_PIXELS,
    MAX_SHAPE_VERTICES,
    clip_ring,
    extent_problem,
    raster_rings,
)
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Polygon, mask_to_polygons, polygons_to_mask


@pytest.mark.parametrize("far", [1e7, 1e8, 1e12, 1e308])
def test_a_vertex_far_outside_the_image_is_clipped_not_walked(far: float) -> None:
    band = Polygon(np.array([[-far, 2.0], [far, 2.0], [far, 7.0], [-far, 7.0]]))
    spike = Polygon(np.array([[1.0, 1.0], [far, 1.2], [1.0, 1.4], [1.0, 9.0], [4.0, 9.0]]))
    t0 = time.perf_counter()
    mask = polygons_to_mask([band], 10, 10)
    polygons_to_mask([spike], 10, 10)
    assert time.perf_counter() - t0 < 5  # a bound, not a timing: unclipped this crashed or took GBs
    assert mask[2:7].all() and not mask[:2].any() and not mask[7:].any()


def test_clipping_keeps_the_fill_of_a_self_intersecting_ring_inside_the_rectangle() -> None:
    # A bowtie crossing the clip rectangle: pixel centres inside keep their even-odd membership.
    bowtie = np.array([[-50.0, 0.0], [60.0, 10.0], [60.0, 0.0], [-50.0, 10.0]])
    clipped = clip_ring(bowtie, -1, -1, 11, 11)
    assert clipped[:, 0].min() >= -1 and clipped[:, 0].max() <= 11
    far = bowtie * np.array([1e6, 1.0])  # same crossing point (x=5), edges stretched far out
    direct = polygons_to_mask([Polygon(bowtie)], 10, 10)
    assert np.array_equal(polygons_to_mask([Polygon(far)], 10, 10)[:, 3:8], direct[:, 3:8])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_polygons_to_mask_refuses_a_non_finite_vertex(bad: float) -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        Polygon(np.array([[0.0, 0.0], [bad, 1.0], [2.0, 2.0]]))
    poly = Polygon(np.array([[0.0, 0.0], [5.0, 1.0], [2.0, 4.0]]))
    poly.exterior[1, 0] = bad  # arrays inside a Polygon are mutable: the rasteriser checks too
    with pytest.raises(InputError, match="NaN or infinite"):
        polygons_to_mask([poly], 8, 8)


def test_work_per_shape_is_bounded_by_vertex_count_and_outline_length() -> None:
    too_many = np.random.default_rng(0).uniform(0, 10, (MAX_SHAPE_VERTICES + 1, 2))
    with pytest.raises(InputError, match="vertices"):
        raster_rings([too_many], 10, 10)
    n = 4000  # a zigzag across a 1000-pixel image: 4 million pixels of outline
    zigzag = np.stack([np.tile([0.0, 1000.0], n // 2), np.linspace(0, 1000, n)], axis=1)
    assert n * 1000 > MAX_OUTLINE_PIXELS
    with pytest.raises(InputError, match="outline"):
        polygons_to_mask([Polygon(zigzag)], 1000, 1000)


def test_a_mask_size_beyond_the_pixel_bound_is_refused_before_allocating() -> None:
    square = Polygon(np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0]]))
    with pytest.raises(ValueError, match="pixels"):
        polygons_to_mask([square], 10**6, 10**6)


def test_extent_bound_is_one_image_size_beyond_each_edge() -> None:
    assert extent_problem(np.array([[-100.0, -50.0], [200.0, 100.0]]), 100, 50) is None
    problem = extent_problem(np.array([[0.0, 0.0], [201.0, 10.0]]), 100, 50)
    assert problem is not None and "x -100..200" in problem


def test_mask_to_polygon_round_trip_is_exact_where_simplification_was_not() -> None:
    # A 17x22 noise mask on which the half-pixel Douglas-Peucker fallback lost a pixel.
    bits = [212, 253, 226, 247, 242, 75, 182, 94, 254, 234, 255, 5, 247, 215, 43, 103, 191, 183]
    bits += [106, 244, 254, 120, 87, 63, 217, 249, 109, 62, 175, 98, 255, 246, 61, 254, 255, 115]
    bits += [191, 103, 117, 254, 249, 127, 222, 247, 31, 254, 156]
    mask = np.unpackbits(np.array(bits, dtype=np.uint8))[: 17 * 22].reshape(17, 22).astype(bool)
    for tolerance in (0.0, 0.5, 1.0):
        back = polygons_to_mask(mask_to_polygons(mask, tolerance), 17, 22)
        assert np.array_equal(back, mask), tolerance
