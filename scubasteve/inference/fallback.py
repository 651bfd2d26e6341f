"""`ClassicFallback`: the one place where a failing engine hands over to the classic engine.

A learned engine can fail where the classic engine cannot: out of GPU memory, a damaged or missing
model found only when it runs, a library that breaks on this machine. The wrapper serves the
`primary` engine until it fails once, then the `classic` engine from then on, and its `note` says
why (the window shows it). The request that failed is answered by the classic engine, so the user
gets proposals either way. Cancellation and a bad box are the caller's business and propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, PromptPoint, Proposal, ProposalCallback

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an engine failed for want of (GPU) memory, told apart by the exception's type."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


class ClassicFallback:
    """Serves `primary`, or `classic` once `primary` has failed (see the module docstring)."""

    def __init__(self, primary: MaskProposer, classic: MaskProposer) -> None:
        self.primary = primary
        self.classic = classic
        #: Why the primary engine was given up ("" while it serves).
        self.failure = ""
        self.out_of_memory = False
        self._image: np.ndarray | None = None

    @property
    def serving(self) -> MaskProposer:
        return self.classic if self.failure else self.primary

    @property
    def name(self) -> str:
        return self.serving.name

    @property
    def note(self) -> str:
        if self.failure:
            return f"the classic engine serves alone: {self.primary.name} failed ({self.failure})"
        return self.primary.note

    @property
    def device(self) -> str:
        return self.serving.device

    @property
    def engines(self) -> Sequence[MaskProposer]:
        return self.serving.engines

    def prefetch(self, image: np.ndarray) -> object | None:
        return None if self.failure else self.primary.prefetch(image)

    def _fail(self, exc: BaseException) -> None:
        self.failure = f"{type(exc).__name__}: {exc}"
        self.out_of_memory = is_out_of_memory(exc)
        log.warning("%s", self.note, exc_info=True)
        if self._image is not None:  # the classic engine may not have seen the image yet
            self.classic.set_image(self._image)

    def set_image(self, image: np.ndarray) -> None:
        self._image = image
        if not self.failure:
            try:
                self.primary.set_image(image)
                return
            except Exception as exc:  # the classic engine carries on
                self._fail(exc)
                return
        self.classic.set_image(image)

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
        if not self.failure:
            try:
                return self.primary.propose(
                    box, k, points, previous=previous, cancel=cancel, on_proposal=on_proposal
                )
            except Cancelled:
                raise
            except InputError as exc:  # e.g. weights found missing only now: not a bad box
                self._fail(exc)
            except ValueError:  # a box that misses the image is the caller's
                raise
            except Exception as exc:
                self._fail(exc)
        return self.classic.propose(
            box, k, points, previous=previous, cancel=cancel, on_proposal=on_proposal
        )
