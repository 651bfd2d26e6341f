"""`ClassicProposer`: ten ranked mask proposals from a box, with no weights and no GPU."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    DEFAULT_DUPLICATE_IOU,
    EngineBase,
    PromptPoint,
    Proposal,
    ProposalCallback,
    patch_iou,
    validate_box,
)
from scubasteve.inference.classic import graphcut, offload, ranking, shapes
from scubasteve.inference.classic.cache import ImageCache
from scubasteve.inference.classic.changes import ChangeGrid
from scubasteve.inference.classic.crop import Crop, build_crop
from scubasteve.inference.classic.fine import (
    apply_edit,
    fine_crop,
    grabcut,
    local_edits,
    previous_in,
    to_shared,
)
from scubasteve.inference.classic.generate import Candidate, generate

#: Below duplicate_iou - this (working resolution) two candidates are surely distinct, above
#: duplicate_iou + this surely duplicates; in between the image-resolution masks decide.
UNSURE_IOU = 0.05
#: Added to the score of a local edit of the mask being corrected (they answer the click; the
#: global re-cuts are alternatives for when the user wants to start over).
EDIT_BONUS = 0.3
#: Agreement assumed for a candidate shown before the others exist (about the fitted data's mean).
PROVISIONAL_AGREEMENT = 0.6


@dataclass(frozen=True, eq=False)
class _Scored:
    candidate: Candidate
    score: float
    agreement: float
    estimate: float


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return inter / union if union else 1.0


def honours_clicks(crop: Crop, mask: np.ndarray) -> bool:
    """Whether a working mask contains every positive click's seed and no negative one's."""
    return not (crop.fg_seeds & ~mask).any() and not (crop.bg_seeds & mask).any()


class ClassicProposer(EngineBase):
    """Image-driven proposals: graph cuts with shape priors, watershed, shapes and their variants.

    `set_image` builds a small pyramid (a few ms for a 1024 px photo); `propose` works on a window
    around the box resampled so the box's longer side is `box_side` pixels, so its cost does not
    depend on the image or object size. Scores estimate the IoU with the true object.
    Thread-safe: `set_image` swaps an immutable cache that running requests keep using.
    """

    name = "classic"

    def __init__(
        self,
        *,
        box_side: int = 96,
        context: float = 0.25,
        duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
    ) -> None:
        self.box_side = box_side
        self.context = context
        self.duplicate_iou = duplicate_iou
        self._cache: ImageCache | None = None
        self._lock = threading.Lock()
        # Only with SCUBASTEVE_OFFLOAD=1 (off by default, ADR 0105): start the solvers' helper
        # process in the background; otherwise this does nothing.
        offload.warm()

    def set_image(self, image: np.ndarray) -> None:
        """Take an (H, W, 3) uint8 RGB image (grayscale, RGBA and float arrays are converted)."""
        cache = ImageCache.build(image)
        with self._lock:
            self._cache = cache

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

        `points`: corrective clicks; every returned proposal contains the positive ones and
        excludes the negative ones (a positive click outside the box widens the box to it).
        `on_proposal` receives candidates as they are found, with a provisional score, at most
        `k` of them and no two near-duplicates; the returned list is the final ranking.
        Raises ValueError when the box does not overlap the image or `set_image` was not called,
        and `Cancelled` when `cancel` is set.
        """
        with self._lock:
            cache = self._cache
        if cache is None:
            raise ValueError("no image: call set_image() before propose()")
        if k < 1:
            return []
        crop = self.crop(cache, box, points)
        previous = _inside(previous, cache.width, cache.height) if points else None
        if previous is not None:
            crop.changes = ChangeGrid(previous, crop.frame)

        pool: list[Candidate] = []
        shown: list[tuple[np.ndarray, Proposal]] = []
        for cand in self.candidates(cache, crop, box, points, previous, cancel):
            if not cand.mask.any():
                continue
            if cand.patch is None and any(_iou(cand.mask, p.mask) == 1.0 for p in pool):
                continue
            pool.append(cand)
            if on_proposal is not None and len(shown) < k:
                self._show(crop, cand, pool, shown, on_proposal)
        raise_if_cancelled(cancel)
        return self._rank(crop, pool, k)

    def candidates(
        self,
        cache: ImageCache,
        crop: Crop,
        box: Box,
        points: Sequence[PromptPoint] = (),
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Candidate]:
        """Every generator's candidates in delivery order.

        After a click on a mask being corrected, the local edits of that mask come first (they
        are what the user asked for), then the shared window's generators as alternatives; for a
        box (or clicks without a mask to correct), the shared window's generators, then GrabCut on
        the fine window.
        """
        fine_box = validate_box(box, cache.width, cache.height)
        fine_box = _widen_to_points(fine_box, points, cache.width, cache.height)
        fine_window: Crop | None = None

        def fine() -> Crop:
            nonlocal fine_window
            if fine_window is None:
                fine_window = fine_crop(cache, fine_box, points, self.context)
            return fine_window

        if previous is not None and points:
            window = fine()
            before = previous_in(window.frame, previous)
            for reach, mask in local_edits(window, before):
                edited = apply_edit(previous, window.frame, before, mask, window.guide)
                shared = (to_shared(mask, crop.frame.size) | crop.fg_seeds) & ~crop.bg_seeds
                yield Candidate(f"edit-{reach:g}", "edit", shared, edited)
            raise_if_cancelled(cancel)
        yield from generate(crop, cancel)
        if previous is not None and points:
            return  # GrabCut costs most of a request; after a click the edits answer instead
        window = fine()
        cut = grabcut(window)
        if cut.any():
            yield self._fine_candidate(crop, window, "grabcut", "grabcut", cut)
            yield self._fine_candidate(
                crop,
                window,
                "grabcut+filled",
                "grabcut",
                shapes.fill_holes(shapes.largest_part(cut)),
            )

    @staticmethod
    def _fine_candidate(
        crop: Crop, window: Crop, name: str, family: str, mask: np.ndarray
    ) -> Candidate:
        shared = (to_shared(mask, crop.frame.size) | crop.fg_seeds) & ~crop.bg_seeds
        return Candidate(name, family, shared, window.frame.to_patch(mask, guide=window.guide))

    def crop(self, cache: ImageCache, box: Box, points: Sequence[PromptPoint] = ()) -> Crop:
        """The working window of a request (ValueError when the box misses the image)."""
        box = validate_box(box, cache.width, cache.height)
        box = _widen_to_points(box, points, cache.width, cache.height)
        return build_crop(cache, box, points, box_side=self.box_side, context=self.context)

    @property
    def cache(self) -> ImageCache | None:
        """The current image's cache (None before `set_image`)."""
        with self._lock:
            return self._cache

    def _provisional(self, crop: Crop, cand: Candidate, pool: list[Candidate]) -> Proposal:
        """The candidate scored with its agreement to the candidates found so far."""
        others = [_iou(cand.mask, p.mask) for p in pool if p is not cand]
        agree = float(np.mean(others)) if others else PROVISIONAL_AGREEMENT
        estimate = ranking.score(ranking.features(crop, cand.mask, cand.family, agree))
        return self._proposal(crop, cand, estimate, agree, estimate)

    def _rank(self, crop: Crop, pool: list[Candidate], k: int) -> list[Proposal]:
        if not pool:
            return []
        honouring = [c for c in pool if honours_clicks(crop, c.mask)]
        if not honouring:  # no generator could meet the clicks: impose them on every candidate
            honouring = [
                Candidate(c.name + "+clicks", c.family, (c.mask | crop.fg_seeds) & ~crop.bg_seeds)
                for c in pool
            ]
            honouring = [c for c in honouring if c.mask.any()]
        agreement = ranking.mean_agreement([c.mask for c in honouring])
        bumps = graphcut.click_bumps(crop)
        scored = []
        for c, a in zip(honouring, agreement, strict=True):
            estimate = ranking.score(ranking.features(crop, c.mask, c.family, float(a)))
            rank_score = (
                estimate
                - ranking.click_penalty(c.mask, bumps)
                + (EDIT_BONUS if c.family == "edit" else 0.0)
            )
            scored.append(_Scored(c, rank_score, float(a), estimate))
        scored.sort(key=lambda s: s.score, reverse=True)
        kept: list[tuple[np.ndarray, Proposal]] = []
        finer = min(crop.frame.scale_x, crop.frame.scale_y) < 1.0
        fine_used: set[int] = set()
        for s in scored:
            mask = s.candidate.mask
            if not self._distinct(crop, mask, None, kept):
                if finer and s.candidate.family == "grabcut":
                    self._refine_outline(crop, s, kept, fine_used)
                continue
            p = self._proposal(crop, s.candidate, s.score, s.agreement, s.estimate)
            if p.area and self._distinct(crop, mask, p, kept):
                kept.append((mask, p))
                if len(kept) >= k:
                    break
        return [p for _, p in kept]

    def _refine_outline(
        self,
        crop: Crop,
        fine: _Scored,
        kept: list[tuple[np.ndarray, Proposal]],
        used: set[int],
    ) -> None:
        """Give a kept coarse proposal the outline of its fine-window near-duplicate.

        On an object larger than the shared window the fine candidate is the same object drawn
        at (near) image resolution; the kept proposal keeps its rank and score.
        """
        for i, (mask, p) in enumerate(kept):
            if i in used or p.source.split(":", 1)[-1].startswith(("grabcut", "edit")):
                continue
            if _iou(fine.candidate.mask, mask) > self.duplicate_iou + UNSURE_IOU:
                better = self._proposal(
                    crop, fine.candidate, p.score, p.extras["agreement"], fine.estimate
                )
                kept[i] = (mask, better)
                used.add(i)
                return

    def _show(
        self,
        crop: Crop,
        cand: Candidate,
        pool: list[Candidate],
        shown: list[tuple[np.ndarray, Proposal]],
        on_proposal: ProposalCallback,
    ) -> None:
        """Deliver a new candidate at once unless it misses a click or repeats a shown one."""
        if not honours_clicks(crop, cand.mask) or not self._distinct(crop, cand.mask, None, shown):
            return
        p = self._provisional(crop, cand, pool)
        if p.area and self._distinct(crop, cand.mask, p, shown):
            on_proposal(p)
            shown.append((cand.mask, p))

    def _distinct(
        self,
        crop: Crop,
        mask: np.ndarray,
        proposal: Proposal | None,
        kept: list[tuple[np.ndarray, Proposal]],
    ) -> bool:
        """Whether a candidate is no near-duplicate of the kept ones.

        Duplicates are judged on the image-resolution masks the user will see; the working masks
        settle the clear cases first (resampling moves IoU by far less than the margins), which
        matters on huge images where image-resolution masks are large. With `proposal` None only
        the clear cases are decided and anything unclear counts as distinct.
        """
        changes = crop.changes
        if changes is not None:
            # Edits of a large mask differ in a small region: compare what they change.
            if proposal is None:
                return True
            return all(
                changes.iou(proposal.patch, other.patch) <= self.duplicate_iou for _, other in kept
            )
        for other_mask, other in kept:
            iou = _iou(mask, other_mask)
            if crop.frame.scale_x > 1.0 or crop.frame.scale_y > 1.0:
                iou = self.duplicate_iou  # shrinking to a few image pixels can merge masks
            if iou < self.duplicate_iou - UNSURE_IOU:
                continue
            if iou > self.duplicate_iou + UNSURE_IOU:
                return False
            if proposal is not None and patch_iou(proposal.patch, other.patch) > self.duplicate_iou:
                return False
        return True

    def _proposal(
        self, crop: Crop, cand: Candidate, score: float, agreement: float, estimate: float
    ) -> Proposal:
        # A shown candidate is often in the final list too: resample its mask only once.
        patch = cand.patch or crop.patches.get(id(cand.mask))
        if patch is None:
            patch = crop.patches[id(cand.mask)] = crop.frame.to_patch(cand.mask, guide=crop.guide)
        return Proposal(
            patch=patch,
            score=score,
            source=f"{self.name}:{cand.name}",
            extras={"agreement": agreement},
            quality=round(estimate, 3),
        )


def _inside(patch: MaskPatch | None, width: int, height: int) -> MaskPatch | None:
    """A mask patch cut to the image; None when nothing of it is set inside the image."""
    if patch is None:
        return None
    x0, y0 = max(patch.x, 0), max(patch.y, 0)
    x1, y1 = min(patch.x + patch.width, width), min(patch.y + patch.height, height)
    if x1 <= x0 or y1 <= y0:
        return None
    cut = patch.mask[y0 - patch.y : y1 - patch.y, x0 - patch.x : x1 - patch.x]
    if not cut.any():
        return None
    if (x0, y0, x1, y1) == (patch.x, patch.y, patch.x + patch.width, patch.y + patch.height):
        return patch
    return MaskPatch(cut.copy(), x0, y0)


def _widen_to_points(box: Box, points: Sequence[PromptPoint], width: int, height: int) -> Box:
    """The box grown to contain every positive click (clipped to the image)."""
    xs = [p.x for p in points if p.positive]
    ys = [p.y for p in points if p.positive]
    if not xs:
        return box
    grown = Box(
        min(box.x0, min(xs) - 1),
        min(box.y0, min(ys) - 1),
        max(box.x1, max(xs) + 1),
        max(box.y1, max(ys) + 1),
    )
    return grown.clip(width, height)
