"""`Sam2WithClassic`: SAM 2 first, the classic engine as its second opinion.

The app's default engine is this (inside `ClassicFallback`) when SAM 2 and its weights are
installed. Each box goes to SAM 2; its ten proposals are returned as they are when SAM is sure (its
best predicted IoU at least `min_iou` and its prompt variants agreeing,
`Sam2Proposer.last_agreement`, at least `min_agreement`). Otherwise the classic engine proposes too
and both lists are fused by `RankFusion` (SAM 2 first; agreement between engines counts), so the
classic engine's candidates appear where SAM's disagree. If SAM 2 fails (out of memory, a broken
model), `ClassicFallback` hands over to the classic engine. See
docs/adr/0103-sam2-first-classic-fallback.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    EngineBase,
    MaskProposer,
    PromptPoint,
    Proposal,
    ProposalCallback,
    relay,
)
from scubasteve.inference.fusion import RankFusion

if TYPE_CHECKING:  # pragma: no cover
    from scubasteve.inference.sam2.proposer import Sam2Proposer


class Sam2WithClassic(EngineBase):
    """SAM 2 (`primary`) with the classic engine (`backup`) as second opinion."""

    name = "ensemble"

    def __init__(
        self,
        primary: Sam2Proposer | MaskProposer,
        backup: MaskProposer,
        *,
        min_iou: float = 0.75,
        min_agreement: float = 0.8,
        note: str = "SAM 2 + classic",
    ) -> None:
        self.primary, self.backup = primary, backup
        self.min_iou, self.min_agreement = min_iou, min_agreement
        self.note = note
        self.fuser = RankFusion([primary, backup])
        self.device = primary.device
        #: Whether the last request consulted the backup engine.
        self.consulted_backup = False

    @property
    def engines(self) -> Sequence[MaskProposer]:
        return [self.primary, self.backup]

    def set_image(self, image: np.ndarray) -> None:
        self.backup.set_image(image)
        self.primary.set_image(image)

    def prefetch(self, image: np.ndarray) -> object | None:
        """SAM 2's embedding of the next image, computed in the background (see `Sam2Proposer`)."""
        return self.primary.prefetch(image)

    def sure(self, proposals: Sequence[Proposal]) -> bool:
        """Whether SAM 2's answer needs no second opinion (see the module docstring)."""
        if not proposals:
            return False
        agreement = float(getattr(self.primary, "last_agreement", 1.0))
        return proposals[0].score >= self.min_iou and agreement >= self.min_agreement

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
        """SAM 2's proposals, fused with the classic engine's where SAM is unsure."""
        callback = relay(on_proposal, k, self.fuser.duplicate_iou)
        sam = self.primary.propose(
            box, k, points, previous=previous, cancel=cancel, on_proposal=callback
        )
        self.consulted_backup = not sam or not self.sure(sam)
        if not self.consulted_backup:
            return sam
        raise_if_cancelled(cancel)
        classic = self.backup.propose(
            box, k, points, previous=previous, cancel=cancel, on_proposal=callback
        )
        if not sam:
            return classic
        return self.fuser.fuse([sam, classic], k)
