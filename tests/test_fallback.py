"""ClassicFallback: the one place where a failing engine hands over to the classic engine."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.proposals import box_around, disc_scene, full_iou

from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference.base import EngineBase, MaskProposer
from scubasteve.inference.classic import ClassicProposer
from scubasteve.inference.fallback import ClassicFallback, is_out_of_memory


class Broken(EngineBase):
    """An engine that fails in `propose` (or in `set_image`) with a given exception."""

    name = "learned"
    note = "learned + classic"
    device = "cuda"

    def __init__(self, fail: BaseException, in_set_image: bool = False) -> None:
        self.fail = fail
        self.in_set_image = in_set_image
        self.calls = 0

    def set_image(self, image: np.ndarray) -> None:
        if self.in_set_image:
            raise self.fail

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
        raise_if_cancelled(cancel)
        self.calls += 1
        raise self.fail


def _scene() -> tuple[np.ndarray, np.ndarray, Box]:
    image, mask = disc_scene()
    return image, mask, box_around(mask)


def test_the_wrapper_is_an_engine_that_reports_its_primary():
    engine = ClassicFallback(Broken(RuntimeError("x")), ClassicProposer())
    assert isinstance(engine, MaskProposer)
    assert engine.name == "learned" and engine.note == "learned + classic"
    assert engine.device == "cuda"


def test_a_failing_engine_hands_over_to_the_classic_engine_and_says_why():
    image, mask, box = _scene()
    primary = Broken(RuntimeError("the model file is damaged"))
    engine = ClassicFallback(primary, ClassicProposer())
    engine.set_image(image)
    props = engine.propose(box)
    assert props and full_iou(props[0], mask) > 0.9  # the request that failed is answered
    assert "classic engine serves alone" in engine.note and "damaged" in engine.note
    assert engine.name == "classic"
    assert engine.device == "cpu" and [e.name for e in engine.engines] == ["classic"]
    engine.propose(box)
    assert primary.calls == 1  # given up for good, not retried on every box


def test_out_of_memory_is_told_apart_by_its_type():
    import torch

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("out of memory"))  # the text alone says nothing
    image, _, box = _scene()
    engine = ClassicFallback(
        Broken(torch.OutOfMemoryError("CUDA out of memory")), ClassicProposer()
    )
    engine.set_image(image)
    engine.propose(box)
    assert engine.out_of_memory


def test_missing_weights_found_inside_propose_fall_back_although_input_error_is_a_value_error():
    image, _, box = _scene()
    engine = ClassicFallback(Broken(InputError("no weights installed")), ClassicProposer())
    engine.set_image(image)
    assert engine.propose(box)
    assert "no weights installed" in engine.note


def test_a_failure_in_set_image_serves_the_classic_engine_with_that_image():
    image, mask, box = _scene()
    engine = ClassicFallback(Broken(RuntimeError("boom"), in_set_image=True), ClassicProposer())
    engine.set_image(image)
    props = engine.propose(box)
    assert full_iou(props[0], mask) > 0.9


def test_a_bad_box_and_cancellation_are_the_callers():
    image, _, _ = _scene()
    engine = ClassicFallback(Broken(ValueError("the box misses the image")), ClassicProposer())
    engine.set_image(image)
    with pytest.raises(ValueError, match="misses"):
        engine.propose(Box(0, 0, 10, 10))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        engine.propose(Box(0, 0, 10, 10), cancel=token)
    assert engine.failure == ""
