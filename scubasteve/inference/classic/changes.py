"""Comparing corrective edits by what they change in the mask being corrected.

Two edits of a large mask overlap it, and so each other, by far more than the 0.9 IoU at which
proposals count as near-duplicates; what tells them apart is the region each changes. One grid per
request samples those changes, so comparing any two costs the same whatever the image size.
"""

from __future__ import annotations

import math

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.inference.classic.frame import Frame

#: Grid points at most on which `ChangeGrid` compares two edits.
CHANGE_GRID_POINTS = 200_000


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


class ChangeGrid:
    """What proposals change in the mask being corrected, sampled on one grid per request.

    The grid covers the request's window and the previous mask, with at most about
    `CHANGE_GRID_POINTS` points, so comparing the changes of two edits costs the same whatever
    the image size; each proposal is sampled once.
    """

    def __init__(self, previous: MaskPatch, frame: Frame) -> None:
        x0, y0 = min(previous.x, frame.x0), min(previous.y, frame.y0)
        x1 = max(previous.x + previous.width, frame.x1)
        y1 = max(previous.y + previous.height, frame.y1)
        step = max(1, math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / CHANGE_GRID_POINTS)))
        self.rows = np.arange(y0, y1, step)
        self.cols = np.arange(x0, x1, step)
        self.base = self._sample(previous)
        self._changes: dict[int, np.ndarray] = {}

    def _sample(self, p: MaskPatch) -> np.ndarray:
        out = np.zeros((self.rows.size, self.cols.size), bool)
        ri = np.flatnonzero((self.rows >= p.y) & (self.rows < p.y + p.height))
        ci = np.flatnonzero((self.cols >= p.x) & (self.cols < p.x + p.width))
        if ri.size and ci.size:
            out[np.ix_(ri, ci)] = p.mask[np.ix_(self.rows[ri] - p.y, self.cols[ci] - p.x)]
        return out

    def change(self, p: MaskPatch) -> np.ndarray:
        """The grid points where `p` differs from the previous mask (cached per patch)."""
        found = self._changes.get(id(p))
        if found is None:
            found = self._changes[id(p)] = self._sample(p) ^ self.base
        return found

    def iou(self, a: MaskPatch, b: MaskPatch) -> float:
        """IoU of the changes of `a` and `b` (1.0 when neither changes anything)."""
        return _iou(self.change(a), self.change(b))
