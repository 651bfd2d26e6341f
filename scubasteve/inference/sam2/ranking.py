"""Collecting SAM 2's candidate masks for one request: delivery as they come, the final ranking.

Each candidate is cut from low-resolution logits to the request's region; a new one is delivered
(`on_proposal`) when it is no near-duplicate of one delivered before; the final list ranks those that
honour every click first, then by score (SAM's predicted IoU), dropping near-duplicates. See
`scubasteve.inference.sam2.proposer` for what the scores mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint, Proposal, ProposalCallback, patch_iou
from scubasteve.inference.sam2.prompts import region_logits


@dataclass
class Candidate:
    """One mask with its score, the prompt it came from and its logits."""

    patch: MaskPatch
    score: float
    tag: str
    logits: np.ndarray  # (256, 256) low-resolution logits it was cut from
    violations: int
    extras: dict[str, float]


class Ranking:
    """Collects candidates, delivers each new distinct one, and ranks them at the end."""

    def __init__(
        self,
        k: int,
        duplicate_iou: float,
        points: Sequence[PromptPoint],
        on_proposal: ProposalCallback | None,
    ) -> None:
        self.k, self.duplicate_iou, self.points = k, duplicate_iou, tuple(points)
        self.on_proposal = on_proposal
        self.candidates: list[Candidate] = []
        self.delivered: list[Proposal] = []
        self._by_proposal: dict[int, Candidate] = {}
        self._variant_best: dict[str, Candidate] = {}

    def _violations(self, patch: MaskPatch) -> int:
        bad = 0
        for p in self.points:
            col, row = int(p.x) - patch.x, int(p.y) - patch.y
            inside = 0 <= row < patch.height and 0 <= col < patch.width and patch.mask[row, col]
            bad += int(bool(inside) != p.positive)
        return bad

    def add_logits(
        self,
        logits: np.ndarray,
        score: float,
        tag: str,
        hw: tuple[int, int],
        region: Box,
        level: float = 0.0,
        extras: dict[str, float] | None = None,
    ) -> Candidate | None:
        patch = region_patch(region_logits(logits, hw, region) > level, region)
        if patch.area == 0:
            return None
        info = {"predicted_iou": score} if extras is None else extras
        cand = Candidate(patch, score, tag, logits, self._violations(patch), info)
        self.candidates.append(cand)
        variant = tag.rsplit("-m", 1)[0]
        best = self._variant_best.get(variant)
        if best is None or (cand.violations, -cand.score) < (best.violations, -best.score):
            self._variant_best[variant] = cand
        self._deliver(cand)
        return cand

    def add_cuts(self, ratio: float, hw: tuple[int, int], region: Box) -> None:
        """Cut each of the best distinct masks' logits at the level that gives `ratio` times its
        area (scored below their parent: see the module docstring)."""
        for parent in self._distinct(self.k):
            if "cut" in parent.extras:
                continue
            values = region_logits(parent.logits, hw, region).ravel()
            target = round(parent.patch.area * ratio)
            if not 0 < target < values.size:
                continue
            level = float(np.partition(values, values.size - target)[values.size - target])
            patch = region_patch(region_logits(parent.logits, hw, region) >= level, region)
            if patch.area == 0:
                continue
            overlap = patch_iou(patch, parent.patch)
            extras = {"predicted_iou": parent.score, "cut": level, "area_ratio": ratio}
            cand = Candidate(
                patch, parent.score * overlap, f"{parent.tag}-x{ratio:g}", parent.logits,
                self._violations(patch), extras,
            )  # fmt: skip
            self.candidates.append(cand)
            self._deliver(cand)

    def _deliver(self, cand: Candidate) -> None:
        if self.on_proposal is None or len(self.delivered) >= self.k:
            return
        if all(patch_iou(cand.patch, q.patch) <= self.duplicate_iou for q in self.delivered):
            prop = self._proposal(cand)
            self.delivered.append(prop)
            self.on_proposal(prop)

    def _proposal(self, cand: Candidate) -> Proposal:
        prop = Proposal(
            cand.patch, cand.score, f"sam2:{cand.tag}", dict(cand.extras), quality=cand.score
        )
        self._by_proposal[id(prop)] = cand
        return prop

    def _distinct(self, limit: int) -> list[Candidate]:
        kept: list[Candidate] = []
        for cand in sorted(self.candidates, key=lambda c: (c.violations, -c.score)):
            if all(patch_iou(cand.patch, q.patch) <= self.duplicate_iou for q in kept):
                kept.append(cand)
                if len(kept) >= limit:
                    break
        return kept

    def agreement(self) -> float:
        """Mean IoU of the best mask overall with the best mask of each prompt variant: near 1
        when the box, its centre point and the shrunk and grown boxes all point at one object."""
        best = self._distinct(1)
        if not best or not self._variant_best:
            return 0.0
        ious = [patch_iou(best[0].patch, c.patch) for c in self._variant_best.values()]
        return float(np.mean(ious))

    def distinct_count(self) -> int:
        return len(self._distinct(self.k))

    def ranked(self) -> list[Proposal]:
        shown = {id(self._by_proposal[id(p)]): p for p in self.delivered}
        return [shown.get(id(c)) or self._proposal(c) for c in self._distinct(self.k)]

    def logits_of(self, prop: Proposal) -> np.ndarray:
        return self._by_proposal[id(prop)].logits


def region_patch(mask: np.ndarray, region: Box) -> MaskPatch:
    """The tight patch of a region-sized mask (1x1 empty when nothing is set)."""
    x0, y0 = int(region.x0), int(region.y0)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return MaskPatch(np.zeros((1, 1), dtype=bool), x0, y0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return MaskPatch(mask[r0:r1, c0:c1].copy(), x0 + int(c0), y0 + int(r0))
