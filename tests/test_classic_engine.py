"""The classic engine: valid, ranked, distinct proposals; bad input; cancellation; clicks."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from helpers.proposals import (
    assert_valid_proposals,
    box_around,
    disc_scene,
    full_iou,
    snowman_scene,
    textured_background,
)

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, PromptPoint, Proposal, patch_iou
from scubasteve.inference.classic import ClassicProposer


@pytest.fixture
def disc():
    image, mask = disc_scene()
    engine = ClassicProposer()
    engine.set_image(image)
    return engine, image, mask


def test_classic_engine_implements_the_proposer_protocol():
    assert isinstance(ClassicProposer(), MaskProposer)


def test_proposals_are_valid_sorted_distinct_and_inside_the_image(disc):
    engine, image, mask = disc
    props = engine.propose(box_around(mask), k=10)
    assert_valid_proposals(props, *image.shape[:2], k=10, engine="classic")
    assert len(props) >= 3  # a choice, though a clear object leaves few distinct readings


def test_top_proposal_finds_a_clear_object(disc):
    engine, _, mask = disc
    props = engine.propose(box_around(mask))
    assert full_iou(props[0], mask) > 0.9
    assert 0.0 <= props[0].score <= 1.0


def test_k_limits_the_number_of_proposals(disc):
    engine, _, mask = disc
    assert len(engine.propose(box_around(mask), k=3)) <= 3
    assert engine.propose(box_around(mask), k=0) == []


def test_same_request_gives_the_same_proposals(disc):
    engine, _, mask = disc
    a = engine.propose(box_around(mask))
    b = engine.propose(box_around(mask))
    assert [p.source for p in a] == [p.source for p in b]
    assert all(np.array_equal(p.patch.mask, q.patch.mask) for p, q in zip(a, b, strict=True))


def test_progressive_delivery_shows_distinct_proposals_before_the_end(disc):
    engine, _, mask = disc
    seen: list[tuple[float, object]] = []
    start = time.perf_counter()
    props = engine.propose(
        box_around(mask), k=10, on_proposal=lambda p: seen.append((time.perf_counter(), p))
    )
    end = time.perf_counter()
    assert 1 <= len(seen) <= 10
    assert seen[0][0] < end  # the first arrived while the rest were still being computed
    assert seen[0][0] - start < end - start
    shown = [p for _, p in seen]
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert patch_iou(a.patch, b.patch) <= 0.9
    assert props  # the final ranking is still returned


def test_cancelled_request_raises_cancelled(disc):
    engine, _, mask = disc
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        engine.propose(box_around(mask), cancel=token)


def test_cancelling_during_a_request_stops_it_at_the_next_generator(disc):
    engine, _, mask = disc
    token = CancelToken()
    calls = []

    def on_proposal(p):
        calls.append(p)
        token.cancel()  # a newer box was drawn right after the first proposal showed

    with pytest.raises(Cancelled):
        engine.propose(box_around(mask), cancel=token, on_proposal=on_proposal)
    assert len(calls) == 1


def test_negative_click_removes_the_clicked_part():
    image, upper, lower = snowman_scene()
    engine = ClassicProposer()
    engine.set_image(image)
    box = box_around(upper | lower)
    before = engine.propose(box)
    click = PromptPoint(120, 170, positive=False)  # the centre of the lower disc
    after = engine.propose(box, points=[click])
    assert after
    for p in after:
        assert not p.patch.to_full(*upper.shape)[170, 120]
    assert full_iou(after[0], upper) > full_iou(before[0], upper)
    assert full_iou(after[0], upper) > 0.7


def test_positive_click_adds_the_clicked_spot_and_widens_the_box():
    image, mask = disc_scene()
    engine = ClassicProposer()
    engine.set_image(image)
    box = box_around(mask)
    outside = PromptPoint(box.x1 + 15, (box.y0 + box.y1) / 2, positive=True)
    props = engine.propose(box, points=[outside])
    assert props
    for p in props:
        assert p.patch.to_full(*mask.shape)[int(outside.y), int(outside.x)]


# --- bad input --------------------------------------------------------------------------------


def test_box_outside_the_image_is_a_clear_error(disc):
    engine, *_ = disc
    with pytest.raises(ValueError, match="less than one pixel"):
        engine.propose(Box(1000, 1000, 1100, 1100))


def test_zero_size_box_is_a_clear_error(disc):
    engine, *_ = disc
    with pytest.raises(ValueError):
        engine.propose(Box(50, 50, 50, 80))


def test_propose_before_set_image_is_a_clear_error():
    with pytest.raises(ValueError, match="set_image"):
        ClassicProposer().propose(Box(0, 0, 10, 10))


@pytest.mark.parametrize(
    "box",
    [Box(100, 100, 101, 101), Box(-50, -50, 400, 400), Box(0, 0, 320, 240), Box(300, 10, 330, 40)],
    ids=["one-pixel", "larger-than-image", "whole-image", "half-outside"],
)
def test_awkward_boxes_give_valid_proposals(disc, box):
    engine, image, _ = disc
    props = engine.propose(box)
    assert_valid_proposals(props, *image.shape[:2], k=10, engine="classic")
    clipped = box.clip(image.shape[1], image.shape[0])
    for p in props:  # nothing outside the box (grown to whole pixels)
        assert p.patch.x >= int(clipped.x0) - 1 and p.patch.y >= int(clipped.y0) - 1
        assert p.patch.x + p.patch.width <= clipped.x1 + 1


@pytest.mark.parametrize(
    "image",
    [
        np.full((1, 1, 3), 128, np.uint8),
        np.zeros((1, 1), np.uint8),
        np.random.default_rng(0).integers(0, 255, (60, 80), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 255, (60, 80, 4), dtype=np.uint8),
        np.random.default_rng(2).random((60, 80, 3)).astype(np.float32),
        np.random.default_rng(3).integers(0, 255, (60, 80, 1), dtype=np.uint8),
    ],
    ids=["1x1-rgb", "1x1-gray", "gray", "rgba", "float", "single-channel"],
)
def test_any_image_layout_gives_valid_proposals(image):
    engine = ClassicProposer()
    engine.set_image(image)
    h, w = image.shape[:2]
    props = engine.propose(Box(0, 0, w, h) if h < 5 else Box(10, 10, 50, 40))
    assert_valid_proposals(props, h, w, k=10, engine="classic")


def test_images_of_unusable_shape_are_a_clear_error():
    engine = ClassicProposer()
    with pytest.raises(ValueError):
        engine.set_image(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError):
        engine.set_image(np.zeros((0, 10, 3), np.uint8))


def test_very_long_image_stays_fast():
    image, mask = disc_scene(h=200, w=20_000, centre=(15_000, 100), radius=60)
    engine = ClassicProposer()
    t0 = time.perf_counter()
    engine.set_image(image)
    t1 = time.perf_counter()
    props = engine.propose(box_around(mask))
    t2 = time.perf_counter()
    assert full_iou(props[0], mask) > 0.85
    whole = engine.propose(Box(0, 0, 20_000, 200), k=3)
    assert_valid_proposals(whole, 200, 20_000, k=3, engine="classic")
    assert t1 - t0 < 5.0 and t2 - t1 < 5.0  # no hang; generous because the machine is shared


# --- real photos ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.shared_data
def test_classic_beats_the_box_on_real_photos(shared_data):
    from scubasteve.bench.samples import load_coco_samples

    coco = shared_data / "coco128-seg"
    images = load_coco_samples(coco / "instances.json", coco / "images", min_area=500, limit=16)
    engine = ClassicProposer()
    top, best, box = [], [], []
    for si in images:
        engine.set_image(si.load())
        for s in si.samples:
            props = engine.propose(s.box)
            ious = [patch_iou(p.patch, s.gt) for p in props]
            top.append(ious[0])
            best.append(max(ious))
            rows, cols = s.box.pixel_slices(si.width, si.height)
            full = s.gt.to_full(si.height, si.width)
            inter = np.count_nonzero(full[rows, cols])
            box_area = (rows.stop - rows.start) * (cols.stop - cols.start)
            box.append(inter / (box_area + s.gt.area - inter))
    assert len(top) == 16
    assert np.mean(top) > np.mean(box) + 0.08
    assert np.mean(best) > np.mean(box) + 0.15


# --- corrective clicks on the mask being corrected --------------------------------------------


def _bitten_disc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A large red disc and a previous mask with a bite out of its right side and a false blob
    on the left (image, truth, previous)."""
    image, mask = disc_scene(h=360, w=420, centre=(210, 180), radius=130, seed=4)
    previous = mask.copy()
    previous[150:210, 290:345] = False  # the bite
    previous[170:190, 60:75] = True  # a false blob left of the disc, far from the bite
    return image, mask, previous


def test_a_click_edits_the_mask_being_corrected_near_the_click_only():
    image, mask, previous = _bitten_disc()
    engine = ClassicProposer()
    engine.set_image(image)
    box = box_around(mask)
    click = PromptPoint(317, 180, positive=True)  # inside the bite
    props = engine.propose(box, points=[click], previous=MaskPatch.from_full(previous))
    edits = [p for p in props if ":edit" in p.source]
    assert edits, [p.source for p in props]
    assert props[0] in edits  # the edits answer the click, so they come first
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    side = max(box.width, box.height)
    for p in edits:
        full = p.patch.to_full(h, w)
        assert full[180, 317]
        reach = float(p.source.rsplit("-", 1)[1])
        far = np.hypot(xs - 317, ys - 180) > (3 * reach + 0.05) * side
        changed = (full != previous) & far
        assert changed.sum() <= 0.002 * far.sum(), p.source  # outside its reach: as it was
    bite = mask & ~previous
    best = max(edits, key=lambda p: full_iou(p, mask))
    filled = best.patch.to_full(h, w) & bite
    assert filled.sum() >= 0.8 * bite.sum()  # the bite is filled up to the disc's edge
    assert full_iou(best, mask) > full_iou(
        Proposal(MaskPatch.from_full(previous), 0, "previous"), mask
    )


def test_without_previous_mask_clicks_recut_the_whole_object():
    image, mask, _ = _bitten_disc()
    engine = ClassicProposer()
    engine.set_image(image)
    props = engine.propose(box_around(mask), points=[PromptPoint(317, 180, positive=True)])
    assert props and not any(":edit" in p.source for p in props)


def test_large_object_outline_follows_the_image_not_the_working_grid():
    """A gear with 24 teeth (26 px wide) on a 400 px disc: the working window of the box
    (96 px) blurs the teeth; the best proposal must keep them."""
    h, w, cx, cy, r, teeth, depth = 520, 560, 280, 260, 200, 24, 18
    image = textured_background(h, w, seed=5)
    a = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    rad = r + depth * (np.sin(a * teeth) > 0)
    pts = np.stack([cx + rad * np.cos(a), cy + rad * np.sin(a)], 1).astype(np.int32)
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [pts], 1)
    mask = m.astype(bool)
    image[mask] = (200, 40, 40)
    engine = ClassicProposer()
    engine.set_image(image)
    props = engine.propose(box_around(mask))
    assert max(full_iou(p, mask) for p in props) >= 0.99


@pytest.mark.parametrize(
    "points, previous",
    [
        ([PromptPoint(150, 120, True), PromptPoint(150, 120, False)], "disc"),  # contradicting
        ([PromptPoint(-40, 500, True)], "disc"),  # outside the image
        ([PromptPoint(99.5, 70, False)], "disc"),  # on the box border
        ([PromptPoint(150, 120, True)], "empty"),  # an empty previous mask
        ([PromptPoint(150, 120, False)], "elsewhere"),  # a previous mask far outside the box
        ([PromptPoint(150, 120, True)] * 25, "disc"),  # the same click many times
    ],
    ids=[
        "contradicting",
        "outside-image",
        "on-border",
        "empty-previous",
        "previous-elsewhere",
        "many",
    ],
)
def test_awkward_clicks_on_a_previous_mask_give_valid_proposals(disc, points, previous):
    engine, image, mask = disc
    h, w = image.shape[:2]
    prev = {
        "disc": MaskPatch.from_full(mask),
        "empty": MaskPatch(np.zeros((1, 1), bool), 0, 0),
        "elsewhere": MaskPatch(np.ones((30, 30), bool), 5000, 5000),
    }[previous]
    props = engine.propose(box_around(mask), points=points, previous=prev)
    assert_valid_proposals(props, h, w, k=10, engine="classic", distinct=False)


def test_a_click_on_a_huge_image_edits_a_large_object_quickly():
    image, mask = disc_scene(h=9000, w=12000, centre=(6000, 4500), radius=3000, seed=2)
    engine = ClassicProposer()
    engine.set_image(image)
    box = box_around(mask)
    previous = mask.copy()
    previous[4300:4700, 8600:9000] = False  # a bite at the right edge
    t0 = time.perf_counter()
    props = engine.propose(
        box, points=[PromptPoint(8800, 4500, True)], previous=MaskPatch.from_full(previous)
    )
    assert props and props[0].patch.to_full(9000, 12000)[4500, 8800]
    assert time.perf_counter() - t0 < 60.0  # no hang; generous because the machine is shared
