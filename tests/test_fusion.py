"""RankFusion: fusion across engines, duplicates, progress pass-through."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.proposals import assert_valid_proposals, box_around, disc_scene

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import EngineBase, MaskProposer, Proposal
from scubasteve.inference.classic import ClassicProposer
from scubasteve.inference.fusion import RankFusion


def square(x: int, y: int, side: int) -> MaskPatch:
    return MaskPatch(np.ones((side, side), bool), x, y)


class FakeEngine(EngineBase):
    """Returns fixed proposals (best first) and records what it was asked."""

    def __init__(self, name: str, patches: list[MaskPatch], fail: Exception | None = None):
        self.name = name
        self.patches = patches
        self.fail = fail
        self.images: list[tuple[int, ...]] = []

    def set_image(self, image: np.ndarray) -> None:
        self.images.append(image.shape)

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
        raise_if_cancelled(cancel)
        if self.fail is not None:
            raise self.fail
        props = [Proposal(p, 100.0 - i, f"{self.name}:{i}") for i, p in enumerate(self.patches[:k])]
        for p in props:
            if on_proposal is not None:
                on_proposal(p)
        return props


BOX = Box(0, 0, 100, 100)


def test_fusion_implements_the_proposer_protocol():
    assert isinstance(RankFusion([FakeEngine("a", [])]), MaskProposer)


def test_a_fusion_of_no_engine_is_refused():
    with pytest.raises(ValueError):
        RankFusion([])


def test_one_engine_keeps_its_own_order():
    patches = [square(0, 0, 10), square(50, 50, 20), square(20, 0, 5)]
    props = RankFusion([FakeEngine("a", patches)]).propose(BOX)
    assert [p.source for p in props] == ["a:0", "a:1", "a:2"]
    assert [p.score for p in props] == sorted((p.score for p in props), reverse=True)


def test_a_mask_found_by_both_engines_outranks_one_found_by_one():
    shared = square(40, 40, 30)
    a = FakeEngine("a", [square(0, 0, 10), shared])
    b = FakeEngine("b", [square(70, 0, 12), MaskPatch(np.ones((30, 31), bool), 40, 40)])
    props = RankFusion([a, b]).propose(BOX)
    # Each engine ranked the shared mask second, yet agreement lifts it to the top.
    assert props[0].patch.box() in (shared.box(), Box(40, 40, 71, 70))
    assert props[0].extras["cross_agreement"] > 0.9


def test_a_less_trusted_engine_yields_the_lead_but_keeps_its_places():
    a = FakeEngine("a", [square(0, 0, 10), square(20, 20, 10), square(40, 40, 10)])
    b = FakeEngine("b", [square(60, 0, 10), square(0, 60, 10)])
    equal = RankFusion([a, b]).propose(BOX)
    assert [p.source for p in equal][:2] == ["a:0", "b:0"]
    weighted = RankFusion([a, b], weights=[1.0, 0.5]).propose(BOX)
    # b's best (0.5 x 1) now ties a's third (2/4) and follows it; all five masks are still offered.
    assert [p.source for p in weighted] == ["a:0", "a:1", "a:2", "b:0", "b:1"]


@pytest.mark.parametrize("weights", [[1.0], [1.0, 0.0], [1.0, 1.5], [1.0, float("nan")]])
def test_trust_weights_must_be_one_per_engine_in_zero_one(weights):
    with pytest.raises(ValueError, match="trust weight"):
        RankFusion([FakeEngine("a", []), FakeEngine("b", [])], weights=weights)


def test_duplicates_across_engines_are_removed_and_k_respected():
    a = FakeEngine("a", [square(0, 0, 10), square(20, 20, 10), square(40, 40, 10)])
    b = FakeEngine("b", [square(0, 0, 10), square(60, 60, 10)])
    props = RankFusion([a, b]).propose(BOX, k=3)
    assert len(props) == 3
    boxes = [p.patch.box() for p in props]
    assert len(set(boxes)) == 3
    assert Box(0, 0, 10, 10) in boxes


def test_engine_scores_are_kept_in_extras():
    props = RankFusion([FakeEngine("a", [square(0, 0, 10)])]).propose(BOX)
    assert props[0].extras["engine_score"] == 100.0
    assert props[0].extras["engine_rank"] == 0.0


def test_progress_passes_through_without_duplicates():
    a = FakeEngine("a", [square(0, 0, 10), square(20, 20, 10)])
    b = FakeEngine("b", [square(0, 0, 10), square(60, 60, 10)])
    seen: list[Proposal] = []
    RankFusion([a, b]).propose(BOX, on_proposal=seen.append)
    assert [p.source for p in seen] == ["a:0", "a:1", "b:1"]


def test_set_image_reaches_every_engine():
    a, b = FakeEngine("a", []), FakeEngine("b", [])
    RankFusion([a, b]).set_image(np.zeros((5, 6, 3), np.uint8))
    assert a.images == [(5, 6, 3)] and b.images == [(5, 6, 3)]


def test_cancelled_request_raises_cancelled():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        RankFusion([FakeEngine("a", [square(0, 0, 10)])]).propose(BOX, cancel=token)


def test_a_bad_box_is_not_swallowed():
    with pytest.raises(ValueError):
        RankFusion([FakeEngine("a", [], fail=ValueError("box outside"))]).propose(BOX)


def test_fusion_of_the_classic_engine_alone_matches_it():
    image, mask = disc_scene()
    classic = ClassicProposer()
    classic.set_image(image)
    alone = classic.propose(box_around(mask))
    ensemble = RankFusion([ClassicProposer()])
    ensemble.set_image(image)
    fused = ensemble.propose(box_around(mask))
    assert_valid_proposals(fused, *image.shape[:2], k=10, engine="classic")
    assert [p.source for p in fused] == [p.source for p in alone]
