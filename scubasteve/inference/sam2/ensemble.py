"""`Sam2Ensemble`: SAM 2 first, the classic engine as its fallback and second opinion.

The app's ``ensemble`` engine is this when SAM 2 and its weights are installed. Each box goes to
SAM 2; its ten proposals are returned as they are when SAM is sure (its best predicted IoU at least
`min_iou` and its prompt variants agreeing, `Sam2Proposer.last_agreement`, at least
`min_agreement`). Otherwise the classic engine proposes too and both lists are fused by the rank
fusion of `EnsembleProposer` (SAM 2 first; agreement between engines counts), so the classic
engine's candidates appear where SAM's disagree. If SAM 2 fails (out of memory, a broken model),
the classic engine answers alone and `note` says why. See docs/adr/0103-sam2-first-classic-fallback.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, PromptPoint, Proposal, ProposalCallback, relay
from scubasteve.inference.ensemble import EnsembleProposer

log = logging.getLogger(__name__)


class Sam2Ensemble:
    """SAM 2 (`primary`) with the classic engine (`backup`) as fallback and second opinion."""

    name = "ensemble"

    def __init__(
        self,
        primary: MaskProposer,
        backup: MaskProposer,
        *,
        min_iou: float = 0.75,
        min_agreement: float = 0.8,
        note: str = "SAM 2 + classic",
    ) -> None:
        self.primary, self.backup = primary, backup
        self.min_iou, self.min_agreement = min_iou, min_agreement
        self.note = note
        self.fuser = EnsembleProposer([primary, backup])
        self.device = getattr(primary, "device", "cpu")
        self.primary_failed = ""
        #: Whether the last request consulted the backup engine.
        self.consulted_backup = False

    @property
    def engines(self) -> list[MaskProposer]:
        return [self.primary, self.backup]

    def set_image(self, image: np.ndarray) -> None:
        self.backup.set_image(image)
        if not self.primary_failed:
            try:
                self.primary.set_image(image)
            except Exception as exc:  # e.g. out of memory: the classic engine carries on
                self._fail(exc)

    def prefetch(self, image: np.ndarray) -> Any:
        """SAM 2's embedding of the next image, computed in the background (see `Sam2Proposer`)."""
        prefetch = getattr(self.primary, "prefetch", None)
        return prefetch(image) if callable(prefetch) and not self.primary_failed else None

    def _fail(self, exc: BaseException) -> None:
        self.primary_failed = f"{type(exc).__name__}: {exc}"
        self.note = f"the classic engine serves alone: SAM 2 failed ({self.primary_failed})"
        log.warning("ensemble: %s", self.note, exc_info=True)

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
        sam: list[Proposal] = []
        if not self.primary_failed:
            try:
                sam = self.primary.propose(
                    box, k, points, previous=previous, cancel=cancel, on_proposal=callback
                )
            except (Cancelled, ValueError):
                raise
            except Exception as exc:
                self._fail(exc)
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
