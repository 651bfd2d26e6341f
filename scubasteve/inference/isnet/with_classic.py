"""`IsnetWithClassic`: IS-Net and the classic engine on every box, ranked together.

The default engine when IS-Net's weights are installed (and SAM 2 is not). The classic engine
answers first (its first proposal shows within tens of milliseconds) and its proposals stream to
the window; then the network's map of the box comes, its candidates are cut, and every candidate
of both engines gets an IoU estimate from `ranking.py`, which knows when the network took another
object than the boxed one. The returned list, ranked by that estimate, is the final order; the
estimate is the `quality` the window shows and saves.

If the network fails (out of memory, a broken model), `ClassicFallback` hands over to the classic
engine (inference/fallback.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    DEFAULT_DUPLICATE_IOU,
    EngineBase,
    MaskProposer,
    PromptPoint,
    Proposal,
    ProposalCallback,
    patch_iou,
    relay,
)
from scubasteve.inference.isnet import ranking
from scubasteve.inference.isnet.crops import BoxMap, MapCandidate, patch_in_region
from scubasteve.inference.isnet.proposer import EDIT_BONUS, IsnetProposer, is_edit_source


@dataclass(eq=False)
class Scored:
    """A candidate of either engine with its model input row (for fitting and for ranking).

    The classic engine's candidates come as proposals; the network's as map candidates, whose
    image-resolution masks are made only when the ranking gets to them.
    """

    row: np.ndarray
    from_network: bool
    source: str
    classic: Proposal | None = None
    candidate: MapCandidate | None = None
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def patch(self) -> MaskPatch:
        if self.classic is not None:
            return self.classic.patch
        assert self.candidate is not None
        return self.candidate.patch

    def proposal(self, score: float, quality: float) -> Proposal:
        engine_score = self.classic.score if self.classic is not None else 0.0
        extras = dict(self.classic.extras if self.classic else self.extras)
        extras["engine_score"] = float(engine_score)
        return Proposal(self.patch, score, self.source, extras, round(quality, 3))


class IsnetWithClassic(EngineBase):
    """IS-Net (`network`) and the classic engine (`classic`) ranked together (module docstring)."""

    name = "ensemble"

    def __init__(
        self,
        network: IsnetProposer,
        classic: MaskProposer,
        *,
        duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
        note: str = "IS-Net + classic",
        concurrent: bool = True,
    ) -> None:
        self.network = network
        self.classic = classic
        self.duplicate_iou = duplicate_iou
        self.note = note
        self.device = network.device
        # The network's pass runs on its own thread while the classic engine works: PyTorch
        # releases the GIL in its kernels, so the two overlap (docs/proposals.md has the timings).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="isnet") if concurrent else None

    @property
    def engines(self) -> Sequence[MaskProposer]:
        return [self.network, self.classic]

    def set_image(self, image: np.ndarray) -> None:
        self.classic.set_image(image)
        self.network.set_image(image)

    def scored(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: ProposalCallback | None = None,
    ) -> list[Scored]:
        """Every candidate of both engines with its ranking row (classic ones first)."""
        forward = relay(on_proposal, k, self.duplicate_iou)
        correcting = previous if points else None
        pending = None
        if self._pool is not None:
            pending = self._pool.submit(self.network.box_map, box, points, cancel, correcting)
        # A cancelled request leaves a running network pass to finish on its thread (its map is
        # cached for the image); nothing waits for it.
        classic = self.classic.propose(
            box, k, points, previous=previous, cancel=cancel, on_proposal=forward
        )
        raise_if_cancelled(cancel)
        if pending is not None:
            bm = pending.result()
        else:
            bm = self.network.box_map(box, points, cancel, correcting)
        return self._rows(bm, classic)

    def _rows(self, bm: BoxMap, classic: list[Proposal]) -> list[Scored]:
        x0, y0, x1, y1 = bm.region
        scale = min(1.0, ranking.GRID / max(x1 - x0, y1 - y0, 1))
        prob = bm.map.region(x0, y0, x1, y1, scale)
        grid = prob.shape

        def on_grid(patch: MaskPatch) -> np.ndarray:
            return patch_in_region(patch, bm.region, grid) > 0.5

        def resampled(mask: np.ndarray) -> np.ndarray:
            if mask.shape == grid:
                return mask
            small = cv2.resize(
                mask.astype(np.float32), (grid[1], grid[0]), interpolation=cv2.INTER_AREA
            )
            return small > 0.5

        classic_masks = [on_grid(p.patch) for p in classic]
        net_masks = [resampled(c.grid) for c in bm.candidates]
        image = self.network.image
        height, width = image.shape[:2]
        view = ranking.object_view(
            prob,
            ring_mean(bm),
            (x0 > 0, x1 < width, y0 > 0, y1 < height),
            float(max(x1 - x0, y1 - y0)),
            float(classic[0].quality or 0.0) if classic else 0.0,
            classic_masks[0] if classic else None,
        )
        out: list[Scored] = []
        for rank, (p, mask) in enumerate(zip(classic, classic_masks, strict=True)):
            cross = max((ranking.iou(mask, m) for m in net_masks), default=0.0)
            values = ranking.candidate_values(mask, prob, p.quality or 0.0, rank, cross)
            row = ranking.design_row(view, values, False)
            out.append(Scored(row, False, p.source, classic=p))
        for cand, mask in zip(bm.candidates, net_masks, strict=True):
            cross = max((ranking.iou(mask, m) for m in classic_masks), default=0.0)
            values = ranking.candidate_values(mask, prob, 0.0, None, cross)
            row = ranking.design_row(view, values, True)
            source = f"{self.network.name}:{cand.name}"
            extras = {"map_agreement": values["magree"]}
            out.append(Scored(row, True, source, candidate=cand, extras=extras))
        return out

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
        """Up to `k` proposals of both engines, ranked by the estimated IoU (module docstring)."""
        if k < 1:
            return []
        scored = self.scored(
            box, k, points, previous=previous, cancel=cancel, on_proposal=on_proposal
        )
        order = []
        for s in scored:
            value = ranking.estimate(s.row)
            # After a click, the edits of the mask being corrected answer it: they lead, the
            # global re-cuts follow as alternatives (as in the classic engine, ADR 0104).
            bonus = EDIT_BONUS if points and is_edit_source(s.source) else 0.0
            order.append((value + bonus, value, s))
        order.sort(key=lambda t: t[0], reverse=True)
        kept: list[Proposal] = []
        for score, value, s in order:  # masks are made (network) only for what is looked at
            if any(patch_iou(s.patch, q.patch) > self.duplicate_iou for q in kept):
                continue
            if s.patch.area:
                kept.append(s.proposal(score, value))
            if len(kept) >= k:
                break
        return kept


def ring_mean(bm: BoxMap) -> float:
    """Mean probability of the map in its context: the window's part outside the box region."""
    prob, window = bm.map.prob, bm.map.window
    size_y, size_x = prob.shape
    x0, y0, x1, y1 = bm.region
    c0 = int(np.clip(round((x0 - window.x0) * size_x / window.width), 0, size_x))
    c1 = int(np.clip(round((x1 - window.x0) * size_x / window.width), 0, size_x))
    r0 = int(np.clip(round((y0 - window.y0) * size_y / window.height), 0, size_y))
    r1 = int(np.clip(round((y1 - window.y0) * size_y / window.height), 0, size_y))
    total = float(prob.sum())
    inside = float(prob[r0:r1, c0:c1].sum())
    outside_px = prob.size - max(0, r1 - r0) * max(0, c1 - c0)
    return (total - inside) / outside_px if outside_px > 0 else 0.0
