"""Refining PixelLib instances with a mask proposer; keeping both masks through LabelMe files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from scubasteve.core.annotation import ImageDoc, MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box, mask_iou, polygons_to_mask
from scubasteve.inference.base import PromptPoint, Proposal
from scubasteve.inference.maskrcnn.instances import Instance, alternatives, swap_alternative
from scubasteve.inference.maskrcnn.refine import pick_refined, preferred, refine_instances
from scubasteve.io.labelme import read_labelme, write_labelme

H, W = 120, 160


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


class FakeProposer:
    """Proposes, for any box: a part of the object, the object itself, and the whole box."""

    name = "fake"

    def __init__(self, object_mask: np.ndarray) -> None:
        self.object_mask = object_mask
        self.images: list[tuple[int, ...]] = []
        self.boxes: list[Box] = []

    def set_image(self, image: np.ndarray) -> None:
        self.images.append(image.shape)

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: object = None,
    ) -> list[Proposal]:
        raise_if_cancelled(cancel)
        self.boxes.append(box)
        rows, cols = box.pixel_slices(W, H)
        whole_box = np.zeros((H, W), dtype=bool)
        whole_box[rows, cols] = True
        part = self.object_mask.copy()
        part[:, W // 2 :] = False
        masks = [
            (part, 0.9, "fake:part"),
            (self.object_mask, 0.8, "fake:object"),
            (whole_box, 0.7, "fake:box"),
        ]
        return [Proposal(MaskPatch.from_full(m), s, src) for m, s, src in masks][:k]


def _instance(mask: np.ndarray, label: str = "fig") -> Instance:
    patch = MaskPatch.from_full(mask)
    return Instance(label, 2, 0.75, patch.box(), patch)


def test_refinement_takes_the_proposal_that_agrees_with_pixellib_and_keeps_both() -> None:
    truth = _rect(20, 30, 120, 90)
    coarse = _rect(22, 32, 118, 88)  # PixelLib's mask: a bit inside the object
    proposer = FakeProposer(truth)
    [refined] = refine_instances(np.zeros((H, W, 3), np.uint8), [_instance(coarse)], proposer)
    assert refined.refined is not None and refined.refined.source == "fake:object"
    assert refined.patch.to_full(H, W).sum() == coarse.sum()  # PixelLib's mask is still there
    assert refined.refined_iou == pytest.approx(mask_iou(coarse, truth))
    assert proposer.images == [(H, W, 3)]
    box = proposer.boxes[0]  # the instance box, grown so the proposer sees the outline
    assert box.x0 < 22 and box.y0 < 32 and box.x1 > 118 and box.y1 > 88


def test_top_choice_takes_the_proposers_best() -> None:
    inst = _instance(_rect(22, 32, 118, 88))
    proposals = FakeProposer(_rect(20, 30, 120, 90)).propose(inst.box)
    assert pick_refined(inst, proposals, "top").source == "fake:part"
    assert pick_refined(inst, [], "agree") is None


def test_refined_mask_is_preferred_only_when_it_agrees_enough() -> None:
    inst = _instance(_rect(22, 32, 118, 88))
    assert preferred(inst) == "pixellib"
    other = Proposal(MaskPatch.from_full(_rect(0, 0, 10, 10)), 0.9, "fake:elsewhere")
    assert (
        preferred(Instance(**{**inst.__dict__, "refined": other, "refined_iou": 0.0})) == "pixellib"
    )
    good = Proposal(MaskPatch.from_full(_rect(20, 30, 120, 90)), 0.9, "fake:object")
    assert (
        preferred(Instance(**{**inst.__dict__, "refined": good, "refined_iou": 0.8})) == "refined"
    )


def test_cancelled_refinement_raises_cancelled() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        refine_instances(
            np.zeros((H, W, 3), np.uint8),
            [_instance(_rect(5, 5, 50, 50))],
            FakeProposer(_rect(5, 5, 50, 50)),
            cancel=token,
        )


def test_both_masks_survive_a_labelme_round_trip_and_can_be_swapped(tmp_path: Path) -> None:
    truth, coarse = _rect(20, 30, 120, 90), _rect(22, 32, 118, 88)
    [inst] = refine_instances(
        np.zeros((H, W, 3), np.uint8), [_instance(coarse)], FakeProposer(truth)
    )
    ann = inst.annotation("refined")
    assert ann.source == "pixellib" and ann.score == pytest.approx(0.75)
    assert mask_iou(polygons_to_mask(ann.polygons, H, W), truth) > 0.99

    doc = ImageDoc(path=tmp_path / "img.png", width=W, height=H, annotations=[ann])
    write_labelme(doc, tmp_path / "img.json")
    [back] = read_labelme(tmp_path / "img.json").annotations
    assert [a["source"] for a in alternatives(back)] == ["pixellib"]

    swapped = swap_alternative(back)
    assert mask_iou(polygons_to_mask(swapped.polygons, H, W), coarse) > 0.99
    assert swapped.extra["scubasteve_masks"]["chosen"] == "pixellib"
    again = swap_alternative(swapped)
    assert mask_iou(polygons_to_mask(again.polygons, H, W), truth) > 0.99


def test_unrefined_instances_write_no_alternatives() -> None:
    ann = _instance(_rect(5, 5, 50, 50)).annotation()
    assert alternatives(ann) == [] and "scubasteve_masks" not in ann.extra
    with pytest.raises(ValueError, match="no such alternative"):
        swap_alternative(ann)
