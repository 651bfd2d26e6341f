"""`RankFusion`: several engines' proposals merged into one ranked, duplicate-free list.

Scores of different engines mean different things (the classic engine estimates IoU, DeepMask
gives an objectness probability), so they are not compared. Each proposal instead gets
``2 / (rank + 2)`` from its rank within its own engine (1 for an engine's best, then 0.67, 0.5...),
times that engine's trust weight (1 unless the engine's measured quality says otherwise), plus `agreement_weight` times its best mask IoU with any proposal of another engine: independent
engines that find the same mask are more likely right. With one engine the order is that engine's
own. Near-duplicates across engines are then removed (the higher fused score stays) and the top
`k` kept. See docs/adr/0101-ensemble-ranking.md. The default engine uses it for DeepMask with the
classic engine, and SAM 2 uses it where it asks the classic engine for a second opinion. A failing
engine is `ClassicFallback`'s business (inference/fallback.py), not this class's.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    deduplicate,
    patch_iou,
    relay,
)


class RankFusion(EngineBase):
    """Runs `engines` in order on each request and fuses their proposals.

    `note` says how it was put together (for example why DeepMask is trusted less); the app
    shows it.
    """

    name = "ensemble"

    def __init__(
        self,
        engines: Sequence[MaskProposer],
        *,
        agreement_weight: float = 0.5,
        duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
        note: str = "",
        weights: Sequence[float] | None = None,
    ) -> None:
        if not engines:
            raise ValueError("an ensemble needs at least one engine")
        if weights is not None and (
            len(weights) != len(engines) or not all(0.0 < w <= 1.0 for w in weights)
        ):
            raise ValueError(f"one trust weight in (0, 1] per engine expected, got {list(weights)}")
        self.members = list(engines)
        self.weights = [1.0] * len(self.members) if weights is None else [float(w) for w in weights]
        self.agreement_weight = agreement_weight
        self.duplicate_iou = duplicate_iou
        self.note = note
        self.device = next((e.device for e in self.members if e.device != "cpu"), "cpu")

    @property
    def engines(self) -> Sequence[MaskProposer]:
        return list(self.members)

    @property
    def engine_names(self) -> list[str]:
        return [e.name for e in self.members]

    def set_image(self, image: np.ndarray) -> None:
        for engine in self.members:
            engine.set_image(image)

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
        """Up to `k` proposals from all engines, best first (see the module docstring)."""
        # Pass progress through, without repeating what another engine already showed.
        forward = relay(on_proposal, k, self.duplicate_iou)

        results: list[list[Proposal]] = []
        for engine in self.members:
            raise_if_cancelled(cancel)
            results.append(
                engine.propose(
                    box, k, points, previous=previous, cancel=cancel, on_proposal=forward
                )
            )
        return self.fuse(results, k)

    def fuse(self, results: Sequence[Sequence[Proposal]], k: int) -> list[Proposal]:
        """Merge per-engine ranked lists into one (see the module docstring)."""
        fused: list[Proposal] = []
        for i, props in enumerate(results):
            others = [q for j, other in enumerate(results) if j != i for q in other]
            for rank, p in enumerate(props):
                agree = max((patch_iou(p.patch, q.patch) for q in others), default=0.0)
                score = self.weights[i] * 2.0 / (rank + 2) + self.agreement_weight * agree
                extras = dict(p.extras) | {
                    "engine_score": float(p.score),
                    "engine_rank": float(rank),
                    "cross_agreement": float(agree),
                }
                fused.append(Proposal(p.patch, score, p.source, extras, p.quality))
        # Stable sort: ties keep the engines' order, so the first engine's proposals lead.
        fused.sort(key=lambda p: p.score, reverse=True)
        return deduplicate(fused, k, self.duplicate_iou)
