"""The IS-Net engine: crops and maps, the proposer contract, memory on huge images, and the default
engine that ranks IS-Net's candidates with the classic engine's.

A thin random network of the published layout stands in for the weights where only the contract
matters; where the ranking matters, a stand-in network returns a chosen map (the true object, or
a bigger neighbour, as IS-Net does on clutter), so the tests say what the ranking must do with it.
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
import torch
from helpers.isnet import thin_state, write_ours
from helpers.proposals import assert_valid_proposals, box_around, disc_scene, full_iou

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.classic import ClassicProposer
from scubasteve.inference.isnet import ranking
from scubasteve.inference.isnet.crops import ProbMap, Window, extract
from scubasteve.inference.isnet.network import build_isnet
from scubasteve.inference.isnet.proposer import IsnetOptions, IsnetProposer
from scubasteve.inference.isnet.with_classic import IsnetWithClassic


def thin_proposer(options: IsnetOptions | None = None) -> IsnetProposer:
    net = build_isnet(16)
    net.load_state_dict(thin_state(16))
    return IsnetProposer(net.eval(), "cpu", options or IsnetOptions(input_size=64), {})


class MapStandIn(IsnetProposer):
    """An IS-Net whose map of any window is a chosen full-image mask, seen through that window."""

    def __init__(self, full: np.ndarray, options: IsnetOptions | None = None) -> None:
        super().__init__(None, "cpu", options or IsnetOptions(input_size=128), {})
        self.full = full.astype(np.float32)
        self.runs = 0

    def compute_map(self, window: Window) -> np.ndarray:
        self.runs += 1
        rgb = np.repeat((self.full * 255)[:, :, None], 3, axis=2).astype(np.uint8)
        crop = extract(rgb, window, self.options.input_size)[:, :, 0] + 0.5
        return np.clip(crop, 0, 1).astype(np.float32)


def test_a_window_is_the_box_grown_by_the_context_in_whole_pixels():
    w = Window.around(Box(10.5, 20.0, 30.2, 60.0), 0.1)
    assert (w.x0, w.y0, w.x1, w.y1) == (8, 16, 33, 64)
    tiny = Window.around(Box(5, 5, 6, 6), 0.1)
    assert tiny.width >= 8 and tiny.height >= 8


def test_the_crop_is_grey_outside_the_image_and_the_map_comes_back_where_it_was():
    image, mask = disc_scene()
    window = Window(-40, -30, 200, 180)  # reaches beyond the top-left corner
    crop = extract(image, window, 96)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.float32
    assert np.all(crop[:8, :8] == 0.0)  # outside the image: mid-grey, 0 after normalising
    rgb = np.repeat(mask[:, :, None].astype(np.uint8) * 255, 3, axis=2)
    seen = ProbMap(extract(rgb, window, 512)[:, :, 0] + 0.5, window)
    back = seen.region(0, 0, 200, 180) > 0.5
    truth = mask[:180, :200]
    assert np.count_nonzero(back & truth) / np.count_nonzero(back | truth) > 0.97


def test_the_engine_keeps_the_proposer_contract():
    image, mask = disc_scene()
    engine = thin_proposer()
    engine.set_image(image)
    props = engine.propose(box_around(mask), k=10)
    assert_valid_proposals(props, *image.shape[:2], k=10, engine="isnet")
    with pytest.raises(ValueError):
        engine.propose(Box(400, 400, 420, 420))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        engine.propose(box_around(mask), cancel=token)


def test_the_network_runs_once_per_box_and_image():
    image, mask = disc_scene()
    engine = MapStandIn(mask)
    engine.set_image(image)
    box = box_around(mask)
    engine.propose(box)
    engine.propose(box, points=(PromptPoint(150, 120, True),))
    assert engine.runs == 1  # the click reused the box's map (the click is inside the box)
    engine.set_image(image)
    engine.propose(box)
    assert engine.runs == 2


def test_a_right_map_gives_the_object_and_clicks_are_honoured():
    image, mask = disc_scene()
    engine = MapStandIn(mask)
    engine.set_image(image)
    props = engine.propose(box_around(mask))
    assert full_iou(props[0], mask) > 0.95
    negative = PromptPoint(150.5, 120.5, False)  # the disc's centre
    props = engine.propose(box_around(mask), points=(negative,))
    assert all(not p.patch.to_full(*mask.shape)[120, 150] for p in props)


def test_bf16_is_used_only_where_asked_or_fast():
    assert not thin_proposer(IsnetOptions(input_size=64, bf16=False)).bf16
    assert thin_proposer(IsnetOptions(input_size=64, bf16=True)).bf16


@pytest.mark.slow
def test_a_huge_image_costs_no_more_than_the_crop():
    """Python-side allocations while a box is solved do not grow with the image (12,000 x 9,000)."""
    peaks = {}
    for h, w in ((1500, 2000), (9000, 12000)):
        image = np.zeros((h, w, 3), np.uint8)
        engine = thin_proposer(IsnetOptions(input_size=128))
        engine.set_image(image)  # no copy of a contiguous uint8 image
        tracemalloc.start()
        engine.propose(Box(500, 400, 900, 700))  # the same 400 x 300 box
        peaks[h] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[9000] < peaks[1500] + 8 * 2**20
    assert peaks[9000] < 64 * 2**20


def _scene_with_neighbour() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small red disc (the object) in front of a large grey slab (a salient neighbour)."""
    image, _ = disc_scene(h=300, w=400, centre=(200, 150), radius=30)
    slab = np.zeros(image.shape[:2], np.uint8)
    cv2.rectangle(slab, (60, 40), (340, 260), 1, -1)
    disc = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(disc, (200, 150), 30, 1, -1)
    image[slab.astype(bool) & ~disc.astype(bool)] = (150, 150, 160)
    return image, disc.astype(bool), slab.astype(bool)


def test_the_default_engine_trusts_a_map_that_fits_the_box():
    image, disc, _ = _scene_with_neighbour()
    engine = IsnetWithClassic(MapStandIn(disc), ClassicProposer())
    engine.set_image(image)
    props = engine.propose(box_around(disc))
    assert full_iou(props[0], disc) > 0.95  # the network and the classic engine agree on it
    assert props[0].quality is not None and props[0].quality > 0.8
    network = [s for s in engine.scored(box_around(disc)) if s.from_network]
    assert max(ranking.estimate(s.row) for s in network) > 0.9


def test_the_default_engine_distrusts_a_map_of_a_bigger_neighbour():
    """IS-Net's failure on clutter: the whole slab, cut by the box, instead of the boxed disc."""
    image, disc, slab = _scene_with_neighbour()
    engine = IsnetWithClassic(MapStandIn(slab), ClassicProposer())
    engine.set_image(image)
    props = engine.propose(box_around(disc))
    assert props[0].engine == "classic"
    assert full_iou(props[0], disc) > 0.95
    network = [p for p in props if p.engine == "isnet"]
    assert all(p.quality is not None and p.quality < props[0].quality for p in network)


def test_the_ensemble_serves_isnet_with_the_classic_engine_when_its_weights_are_installed(tmp_path):
    from scubasteve import weights
    from scubasteve.inference.engines import create_proposer, engine_status
    from scubasteve.inference.fallback import ClassicFallback

    path = write_ours(tmp_path / "thin.pt", thin_state(16), divisor=16)
    weights.import_file("thin-isnet", path, kind="isnet")
    status = {s.name: s for s in engine_status()}
    assert status["isnet"].available
    assert status["ensemble"].reason == "IS-Net and the classic engine, ranked together"
    engine = create_proposer("ensemble", device="cpu")
    assert isinstance(engine, ClassicFallback) and isinstance(engine.primary, IsnetWithClassic)
    assert [e.name for e in engine.engines] == ["isnet", "classic"]
    image, mask = disc_scene()
    engine.set_image(image)
    props = engine.propose(box_around(mask))
    assert 1 <= len(props) <= 10
    assert all(p.quality is not None and 0.0 <= p.quality <= 1.0 for p in props)
    assert torch.get_num_threads() >= 1


def test_a_click_on_a_part_the_map_knows_adds_or_cuts_that_part_and_keeps_the_rest():
    image, _ = disc_scene(h=200, w=300)
    body = np.zeros((200, 300), np.uint8)
    cv2.rectangle(body, (60, 60), (180, 140), 1, -1)
    arm = np.zeros((200, 300), np.uint8)
    cv2.rectangle(arm, (181, 90), (240, 110), 1, -1)
    whole = (body | arm).astype(bool)
    engine = MapStandIn(whole)
    engine.set_image(image)
    box = box_around(whole)
    previous = MaskPatch.from_full(body.astype(bool))  # the arm was missed
    props = engine.propose(box, points=(PromptPoint(225.5, 100.5, True),), previous=previous)
    edits = [p for p in props if p.source.startswith("isnet:map-edit+")]
    assert edits, [p.source for p in props]
    best = max(edits, key=lambda p: full_iou(p, whole))
    assert full_iou(best, whole) > 0.97
    # a negative click on the arm of a mask that has it cuts the arm and nothing else
    previous = MaskPatch.from_full(whole)
    props = engine.propose(box, points=(PromptPoint(225.5, 100.5, False),), previous=previous)
    cuts = [p for p in props if p.source.startswith("isnet:map-edit-")]
    assert not cuts  # the map says the arm is object: the map cannot separate it, no edit
