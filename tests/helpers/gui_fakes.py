"""Fast, deterministic stand-ins for the engines, so GUI tests do not depend on models."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import EngineBase, PromptPoint, Proposal, validate_box


def proposal_mask(box: Box, i: int, width: int, height: int) -> MaskPatch:
    """Proposal i: the box's pixels shrunk by i*8 % of its size per side, each clearly distinct."""
    shrink = 0.04 * i
    inner = Box(
        box.x0 + box.width * shrink,
        box.y0 + box.height * shrink,
        box.x1 - box.width * shrink,
        box.y1 - box.height * shrink,
    )
    rows, cols = inner.pixel_slices(width, height)
    mask = np.zeros((height, width), dtype=bool)
    mask[rows, cols] = True
    return MaskPatch.from_full(mask)


class FakeProposer(EngineBase):
    """Proposes k nested rectangles inside the box; optional delay checks the cancel token."""

    name = "fake"
    device = "cpu"

    def __init__(
        self, delay: float = 0.0, fail: BaseException | None = None, progressive: bool = False
    ) -> None:
        self.delay = delay
        self.progressive = progressive
        self.fail = fail
        self.size = (0, 0)
        self.calls: list[Box] = []
        self.previous: list[MaskPatch | None] = []  # each call's `previous`
        self.cancelled = 0
        self.set_images = 0
        self.release = threading.Event()

    def set_image(self, image: np.ndarray) -> None:
        self.size = (image.shape[1], image.shape[0])
        self.set_images += 1

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal=None,  # type: ignore[no-untyped-def]
    ) -> list[Proposal]:
        self.calls.append(box)
        self.previous.append(previous)
        if self.fail is not None:
            raise self.fail
        w, h = self.size
        box = validate_box(box, w, h)
        end = time.perf_counter() + self.delay
        while time.perf_counter() < end:
            if cancel is not None and cancel.cancelled:
                self.cancelled += 1
                cancel.raise_if_cancelled()
            time.sleep(0.005)
        raise_if_cancelled(cancel)
        shift = sum(1 if p.positive else -1 for p in points)
        found = [
            Proposal(
                proposal_mask(box, i + max(shift, 0), w, h),
                1.0 - 0.05 * i,
                f"fake:{i}",
                quality=round(0.95 - 0.1 * i, 2),  # an IoU estimate, unlike the rank score
            )
            for i in range(k)
        ]
        if self.progressive and on_proposal is not None:
            for p in found[:3]:
                on_proposal(p)
            self.release.wait(5.0)  # the test decides when the rest arrives
        return found


class FakeSegmenter:
    """PixelLib stand-in: one 'person' in the middle quarter of every image, via a Future."""

    path = Path("fake_mask_rcnn.h5")
    speed = 1024
    min_score = 0.7
    classes = None

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._executor = ThreadPoolExecutor(1)
        self.images = 0

    def detect_async(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        from scubasteve.inference.maskrcnn.instances import Instance

        def work() -> list[Instance]:
            self.images += 1
            h, w = image.shape[:2]
            mask = np.zeros((h, w), dtype=bool)
            mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
            patch = MaskPatch.from_full(mask)
            return [Instance("person", 1, 0.9, patch.box(), patch)]

        return self._executor.submit(work)


def make_images(folder: Path, n: int = 3, size: tuple[int, int] = (320, 240)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = size
        arr = (rng.random((h, w, 3)) * 60 + 90).astype(np.uint8)
        arr[60:180, 80:240] = (200, 40 + 30 * i, 40)
        path = folder / f"img{i + 1}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths
