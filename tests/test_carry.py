"""Carrying shapes to the next image (inference/carry.py): following, moving, choosing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scubasteve.core.annotation import REPLACES_KEY, Annotation, ImageDoc, MaskPatch
from scubasteve.core.geometry import Box, Polygon
from scubasteve.inference.base import Proposal
from scubasteve.inference.carry import (
    REFIT_AGREEMENT,
    Shift,
    follow,
    moved,
    refit,
    seeds,
)


def _scene(dx: int = 0, dy: int = 0, size: tuple[int, int] = (200, 300)) -> np.ndarray:
    """A textured background with a bright, patterned object at (100+dx, 60+dy), 60x40."""
    rng = np.random.default_rng(1)
    h, w = size
    image = (rng.random((h, w, 3)) * 80).astype(np.uint8)
    obj = (rng.random((40, 60, 3)) * 100 + 150).astype(np.uint8)
    image[60 + dy : 100 + dy, 100 + dx : 160 + dx] = obj
    return image


def _square(box: Box) -> Polygon:
    return Polygon(
        np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    )


def test_following_a_box_finds_where_its_content_went() -> None:
    before, after = _scene(), _scene(dx=13, dy=-7)
    shift = follow(before, after, Box(100, 60, 160, 100))
    assert (shift.dx, shift.dy) == (13, -7) and shift.score > 0.9
    # A large box is matched scaled down, still to within a pixel or two.
    big_before = np.kron(before, np.ones((6, 6, 1), np.uint8))
    big_after = np.kron(after, np.ones((6, 6, 1), np.uint8))
    shift = follow(big_before, big_after, Box(600, 360, 960, 600))
    assert abs(shift.dx - 78) <= 3 and abs(shift.dy + 42) <= 3


def test_a_flat_or_tiny_box_is_not_followed() -> None:
    flat = np.full((100, 100, 3), 128, np.uint8)
    assert follow(flat, flat, Box(10, 10, 50, 50)) == Shift(0, 0, 0.0)
    assert follow(_scene(), _scene(), Box(10, 10, 10.5, 10.5)) == Shift(0, 0, 0.0)
    # The new image is smaller than the search window needs: no shift, no error.
    assert follow(_scene(), _scene()[:30, :30].copy(), Box(100, 60, 160, 100)).score == 0.0


def test_a_moved_mask_is_cut_to_the_new_image() -> None:
    patch = MaskPatch(np.ones((10, 10), bool), x=5, y=5)
    inside = moved(patch, Shift(-8, 2, 1.0), 20, 20)
    assert inside is not None and (inside.x, inside.y, inside.width, inside.height) == (0, 7, 7, 10)
    assert moved(patch, Shift(100, 0, 1.0), 20, 20) is None


def test_seeds_follow_each_shape_and_count_what_cannot_be(tmp_path: Path) -> None:
    before, after = _scene(), _scene(dx=10, dy=5)
    obj = Annotation("box", (_square(Box(100, 60, 160, 100)),))
    gone = Annotation("edge", (_square(Box(280, 180, 300, 200)),))
    line = Annotation("line", shape_type="line", points=np.array([[1.0, 1.0], [5.0, 5.0]]))
    found, lost = seeds([obj, gone, line], before, after[:150, :250].copy())
    assert lost == 2 and len(found) == 1  # the line has no area; "edge" is beyond the new image
    seed = found[0]
    assert seed.shape is obj and (seed.shift.dx, seed.shift.dy) == (10, 5)
    assert seed.prior.box() == Box(110, 65, 170, 105)
    assert seed.box.x0 < 110 and seed.box.x1 > 170  # the engine gets a little room


def test_refit_keeps_the_proposal_that_agrees_with_the_moved_mask_or_none() -> None:
    prior = MaskPatch(np.ones((20, 20), bool), x=10, y=10)
    close = MaskPatch(np.ones((20, 19), bool), x=10, y=10)  # IoU 0.95
    other = MaskPatch(np.ones((20, 10), bool), x=10, y=10)  # IoU 0.5
    top, second = Proposal(other, 0.9, "engine:a"), Proposal(close, 0.5, "engine:b")
    assert refit([top, second], prior) is second
    assert refit([top], prior) is None
    assert REFIT_AGREEMENT > 0.5


def test_a_mask_made_from_a_rectangle_keeps_the_rectangle_in_its_file(tmp_path: Path) -> None:
    from scubasteve.io.labelme import read_labelme, write_labelme

    box = Box(10, 20, 50, 60)
    rect = Annotation(
        "cat", (_square(box),), shape_type="rectangle",
        points=np.array([[box.x0, box.y0], [box.x1, box.y1]]),
    )  # fmt: skip
    made = Annotation("cat", (_square(Box(12, 22, 48, 58)),)).standing_in_for(rect)
    path = tmp_path / "a.json"
    write_labelme(ImageDoc(tmp_path / "a.png", 100, 100, [made]), path)
    again = read_labelme(path).annotations[0]
    assert again.needs_review and REPLACES_KEY in again.extra
    back = again.rejected()
    assert back is not None and back.shape_type == "rectangle" and back.bounds() == box
