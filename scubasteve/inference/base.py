"""The mask-proposal interface every engine implements, in the segment-anything shape.

`set_image(image)` does the expensive per-image work once; `propose(box, k)` is then cheap and returns
up to `k` distinct `Proposal`s, best first. No Qt here, and no torch or TensorFlow at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken
from scubasteve.core.geometry import Box

#: Proposals whose masks overlap more than this (IoU) are near-duplicates; the lower-scored one goes.
DEFAULT_DUPLICATE_IOU = 0.9


@dataclass(frozen=True)
class PromptPoint:
    """A click inside a proposal: positive adds that spot to the object, negative removes it."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True, eq=False)
class Proposal:
    """One candidate mask.

    `patch`: the mask as a `MaskPatch` (box-local bool array plus its image offset), so that ten
    proposals on a 12,000 x 9,000 image stay small. `score`: higher is better, comparable between
    proposals of one engine (the ensemble re-ranks across engines). `source`: the engine's name plus
    an optional detail after a colon, e.g. ``classic:grabcut-m10``. `quality`: the engine's
    estimate of the mask's IoU with the object the user means (0..1), or None when the engine has
    none; this, not the rank score, is what the window shows and what is saved as `score`.
    """

    patch: MaskPatch
    score: float
    source: str
    extras: dict[str, float] = field(default_factory=dict)
    quality: float | None = None

    @property
    def engine(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def area(self) -> int:
        return self.patch.area

    def full_mask(self, height: int, width: int) -> np.ndarray:
        return self.patch.to_full(height, width)


ProposalCallback = Callable[[Proposal], None]


@runtime_checkable
class MaskProposer(Protocol):
    """What every mask-proposal engine offers (engines get the optional parts from `EngineBase`).

    `name`: the engine's registry name. `note`: how a composite engine was put together, or why it
    serves reduced (shown by the window; "" for a plain engine). `device`: where it computes.
    `engines`: the engines that answer (a composite's members; a plain engine is its own).
    """

    @property
    def name(self) -> str:
        """The engine's registry name."""
        ...

    @property
    def note(self) -> str:
        """How a composite engine was put together, or why it serves reduced ("" if plain)."""
        ...

    @property
    def device(self) -> str:
        """Where the engine computes (a torch device string; "cpu" for the classic engine)."""
        ...

    @property
    def engines(self) -> Sequence[MaskProposer]:
        """The engines that answer requests (a plain engine: itself)."""
        ...

    def prefetch(self, image: np.ndarray) -> object | None:
        """Start the per-image work for an image that will be set soon (None: nothing to do)."""
        ...

    def set_image(self, image: np.ndarray) -> None:
        """Take a new image ((H, W, 3) uint8 RGB) and do the per-image work that `propose` reuses."""
        ...

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
        """Up to `k` distinct proposals for the object in `box`, best first.

        `points` are corrective clicks; `previous` is the mask the user is correcting with them
        (the proposal shown when the clicks were made; engines may keep it away from the clicks);
        `on_proposal` is called with each new (non-duplicate) proposal
        as soon as it exists, so the first can be shown before the rest are done. Raises `Cancelled`
        when `cancel` is set, and ValueError for a box that does not overlap the image.
        """
        ...


class EngineBase:
    """The optional members of `MaskProposer` with their plain-engine defaults."""

    name = "engine"
    note = ""
    device = "cpu"

    @property
    def engines(self) -> Sequence[MaskProposer]:
        return [self]  # type: ignore[list-item]  # a subclass implements the protocol

    def prefetch(self, image: np.ndarray) -> object | None:
        return None


#: Pixels compared at once by `patch_intersection` (a band of rows): two whole-image masks of a
#: 12,000 x 9,000 photo are compared without a third one as large.
_BAND_PIXELS = 1 << 22


def patch_intersection(a: MaskPatch, b: MaskPatch) -> int:
    """Pixels set in both mask patches, counted on their overlapping window only."""
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    if x1 <= x0 or y1 <= y0:
        return 0
    sa = a.mask[y0 - a.y : y1 - a.y, x0 - a.x : x1 - a.x]
    sb = b.mask[y0 - b.y : y1 - b.y, x0 - b.x : x1 - b.x]
    rows = max(1, _BAND_PIXELS // (x1 - x0))
    return sum(
        int(np.count_nonzero(sa[r : r + rows] & sb[r : r + rows])) for r in range(0, y1 - y0, rows)
    )


def patch_iou(a: MaskPatch, b: MaskPatch) -> float:
    """IoU of two mask patches, computed on their overlapping window only."""
    inter = patch_intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union else 1.0


def relay(
    on_proposal: ProposalCallback | None, k: int, max_iou: float = DEFAULT_DUPLICATE_IOU
) -> ProposalCallback | None:
    """A callback that passes several engines' progress on without repeats.

    At most `k` proposals reach `on_proposal`, none a near-duplicate (IoU > `max_iou`) of one
    already passed; None when there is no `on_proposal` (engines then skip the work).
    """
    if on_proposal is None:
        return None
    shown: list[Proposal] = []

    def forward(p: Proposal) -> None:
        if len(shown) < k and all(patch_iou(p.patch, q.patch) <= max_iou for q in shown):
            shown.append(p)
            on_proposal(p)

    return forward


def deduplicate(
    proposals: Iterable[Proposal], k: int, max_iou: float = DEFAULT_DUPLICATE_IOU
) -> list[Proposal]:
    """Greedy non-maximum suppression on masks: best first, drop any with IoU > max_iou to a kept one."""
    kept: list[Proposal] = []
    for p in sorted(proposals, key=lambda p: p.score, reverse=True):
        if p.area == 0:
            continue
        if all(patch_iou(p.patch, q.patch) <= max_iou for q in kept):
            kept.append(p)
            if len(kept) >= k:
                break
    return kept


def validate_box(box: Box, width: int, height: int) -> Box:
    """The box clipped to the image; ValueError when nothing of it lies inside the image."""
    clipped = box.clip(width, height)
    if clipped.width < 1 or clipped.height < 1:
        raise ValueError(
            f"the box {box.x0:.0f},{box.y0:.0f},{box.x1:.0f},{box.y1:.0f} covers less than one pixel "
            f"of the {width}x{height} image"
        )
    return clipped


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB view or copy of a grayscale, RGB or RGBA array."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image is empty: shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = np.clip(np.nan_to_num(arr) * 255.0, 0, 255)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)
