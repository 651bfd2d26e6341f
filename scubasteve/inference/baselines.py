"""Reference engines for the benchmark: the box itself, and one plain OpenCV GrabCut.

They show what the real engines must beat. Both give at most one proposal.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    EngineBase,
    PromptPoint,
    Proposal,
    ProposalCallback,
    as_rgb,
    validate_box,
)


class _SingleImage(EngineBase):
    """Holds the current image ((H, W, 3) uint8 RGB)."""

    def __init__(self) -> None:
        self._image: np.ndarray | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._image = as_rgb(image)

    def _current(self) -> np.ndarray:
        if self._image is None:
            raise ValueError("no image: call set_image() before propose()")
        return self._image

    def _box_pixels(
        self, box: Box, k: int, cancel: CancelToken | None
    ) -> tuple[np.ndarray, slice, slice] | None:
        """The image and the box's pixel rows/columns; None when there is nothing to propose."""
        image = self._current()
        raise_if_cancelled(cancel)
        h, w = image.shape[:2]
        rows, cols = validate_box(box, w, h).pixel_slices(w, h)
        if k < 1 or rows.stop <= rows.start or cols.stop <= cols.start:
            return None
        return image, rows, cols

    @staticmethod
    def _deliver(proposals: list[Proposal], on_proposal: ProposalCallback | None) -> list[Proposal]:
        if on_proposal is not None:
            for p in proposals:
                on_proposal(p)
        return proposals


class BoxProposer(_SingleImage):
    """One proposal: the pixels whose centres lie inside the box."""

    name = "box"

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: ProposalCallback | None = None,
    ) -> list[Proposal]:
        found = self._box_pixels(box, k, cancel)
        if found is None:
            return []
        _, rows, cols = found
        mask = np.ones((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
        return self._deliver(
            [Proposal(MaskPatch(mask, cols.start, rows.start), 1.0, "box")], on_proposal
        )


class GrabCutProposer(_SingleImage):
    """One proposal: OpenCV GrabCut initialised with the box, 5 iterations, at full resolution.

    This is the baseline of issue 3, deliberately plain: no downscaling, no shape prior. When
    GrabCut labels nothing as the object (frequent on cluttered photos) there is no proposal.
    """

    name = "grabcut"

    def __init__(self, iterations: int = 5) -> None:
        super().__init__()
        self.iterations = iterations

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: ProposalCallback | None = None,
    ) -> list[Proposal]:
        found = self._box_pixels(box, k, cancel)
        if found is None:
            return []
        image, rows, cols = found
        rect = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        mask: np.ndarray = np.zeros(image.shape[:2], np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(
                np.ascontiguousarray(image[:, :, ::-1]),
                mask,
                rect,
                bgd,
                fgd,
                self.iterations,
                cv2.GC_INIT_WITH_RECT,
            )
        except cv2.error:  # no background pixels (the box covers the image) or no object pixels
            return []
        full = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if not full.any():
            return []
        return self._deliver([Proposal(MaskPatch.from_full(full), 1.0, "grabcut")], on_proposal)
