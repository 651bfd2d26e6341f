"""The box-to-annotation loop: request proposals, keep the current one, accept or discard.

State lives here, not in the canvas: the box, the corrective points, the latest `ProposalSet`, which
proposal is current, and when the user started (for `Annotation.seconds`). A request with clicks
also carries the proposal shown when it was made (`previous`: the mask being corrected). A newer
request cancels the pending one; results whose id is not the latest are dropped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import Annotation, MaskPatch
from scubasteve.core.cancel import CancelToken
from scubasteve.core.geometry import Box, Polygon
from scubasteve.gui.controllers.engine_host import EngineHost, ProposalRequest
from scubasteve.gui.render import ProposalSet, ProposalView
from scubasteve.gui.workers import submit
from scubasteve.inference.base import PromptPoint


@dataclass
class AcceptedProposal:
    """What `accept` hands to the document: the annotation and how the proposal was chosen."""

    annotation: Annotation
    index: int
    latency: float
    image_key: str


class ProposalController(QObject):
    proposals_changed = Signal(object)  # ProposalSet | None
    current_changed = Signal(int)  # index into the set, -1 for none
    busy_changed = Signal(bool)
    accepted = Signal(object)  # AcceptedProposal
    latency_measured = Signal(float)  # seconds from box release to all proposals shown
    first_latency_measured = Signal(float)  # seconds from box release to the first proposal shown
    message = Signal(str)

    def __init__(
        self, engine: EngineHost, pool: QThreadPool, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._pool = pool
        self._image_key = ""
        self._image: np.ndarray | None = None
        self._next_id = 0
        self._pending: ProposalRequest | None = None
        self.result: ProposalSet | None = None
        self.current = -1
        self.box: Box | None = None
        self.points: tuple[PromptPoint, ...] = ()
        self.label = ""
        self.tolerance = 1.0
        self.min_island = 0.0  # square pixels; the settings' min_island_area
        self.k = 10
        self.started_at: float | None = None
        self.dropped_stale = 0
        self.pending_accepts = 0
        self._picked_by_user = False
        engine.proposals_ready.connect(self._on_ready)
        engine.proposal_partial.connect(self._on_partial)
        engine.proposals_failed.connect(self._on_failed)

    # -- inputs -------------------------------------------------------------------------------------

    def set_image(self, key: str, image: np.ndarray | None) -> None:
        self.discard()
        self._image_key, self._image = key, image
        if image is not None:
            self._engine.set_image(key, image)

    def begin(self) -> None:
        """The user started a box (mouse press): the annotation's clock starts, unless running."""
        if self.started_at is None or (self.result is None and self._pending is None):
            self.started_at = time.perf_counter()

    def request(self, box: Box) -> int:
        """Ask for proposals for `box` (a fresh object: corrective points are cleared).

        The previous box's proposals go at once, so that Enter cannot accept them for this box.
        """
        self.points = ()
        request_id = self._submit(box)
        if self.result is not None:
            self.result, self.current = None, -1
            self.proposals_changed.emit(None)
            self.current_changed.emit(-1)
        return request_id

    def add_point(self, x: float, y: float, positive: bool) -> int:
        if self.box is None:
            return -1
        self.points = (*self.points, PromptPoint(float(x), float(y), positive))
        return self._submit(self.box)

    def remove_last_point(self) -> int:
        """Undo the last corrective click: proposals for the box with the clicks before it."""
        if self.box is None or not self.points:
            return -1
        self.points = self.points[:-1]
        return self._submit(self.box)

    def _submit(self, box: Box) -> int:
        if self._image is None:
            return -1
        if self.started_at is None:
            self.started_at = time.perf_counter()
        if self._pending is not None:
            self._pending.cancel.cancel()
        self._next_id += 1
        self.box = box
        request = ProposalRequest(
            request_id=self._next_id,
            image_key=self._image_key,
            image=self._image,
            box=box,
            points=self.points,
            k=self.k,
            previous=self._shown_patch() if self.points else None,
            cancel=CancelToken(),
        )
        self._pending = request
        self.busy_changed.emit(True)
        self._engine.propose(request)
        return request.request_id

    def _shown_patch(self) -> MaskPatch | None:
        """The mask the user's clicks correct: the proposal shown now (None if none is)."""
        if self.result is not None and 0 <= self.current < len(self.result.views):
            return self.result.views[self.current].proposal.patch
        return None

    @property
    def pending_id(self) -> int | None:
        return self._pending.request_id if self._pending is not None else None

    @property
    def active(self) -> bool:
        """True while proposals are shown or on their way."""
        return self.result is not None or self._pending is not None

    # -- results ------------------------------------------------------------------------------------

    def _on_partial(self, request_id: int, view: ProposalView) -> None:
        pending = self._pending
        if pending is None or request_id != pending.request_id:
            return
        result = self.result
        if result is None or result.request_id != request_id:
            self.first_latency_measured.emit(time.perf_counter() - pending.submitted)
            result = ProposalSet(request_id, pending.image_key, pending.box, pending.points, [],
                                 "", 0.0, partial=True)  # fmt: skip
            self._picked_by_user = False
        views = [*result.views, view]
        views.sort(key=lambda v: v.proposal.score, reverse=True)
        chosen = result.views[self.current] if self._picked_by_user and self.current >= 0 else None
        self.result = dataclasses.replace(result, views=views)
        self.proposals_changed.emit(self.result)
        self._select(views.index(chosen) if chosen is not None else 0)

    def _on_ready(self, result: ProposalSet) -> None:
        if self._pending is None or result.request_id != self._pending.request_id:
            self.dropped_stale += 1
            return
        latency = time.perf_counter() - self._pending.submitted
        shown = self.result is not None and self.result.request_id == result.request_id
        chosen = None
        if shown and self._picked_by_user and self.current >= 0 and self.result is not None:
            chosen = self.result.views[self.current]
        self._pending = None
        self.busy_changed.emit(False)
        if not shown:
            self.first_latency_measured.emit(latency)
        self.latency_measured.emit(latency)
        self.result = result
        if not result.views:
            self.message.emit(
                "No proposal for this box; try a tighter box or the polygon tool (P)."
            )
        self.proposals_changed.emit(result)
        index = next(
            (i for i, v in enumerate(result.views) if chosen is not None and _same(v, chosen)), 0
        )
        self._select(index if result.views else -1)

    def _on_failed(self, request_id: int, message: str) -> None:
        if self._pending is None or request_id != self._pending.request_id:
            return
        self._pending = None
        self.busy_changed.emit(False)
        self.message.emit(f"No proposals: {message}")

    # -- choosing -----------------------------------------------------------------------------------

    def pick(self, index: int) -> None:
        """The user chose proposal `index` (kept when more proposals arrive)."""
        views = self.result.views if self.result is not None else []
        if not 0 <= index < len(views):
            key = (index + 1) % 10
            if self.result is None:
                self.message.emit(f"No proposals to pick from (key {key}): drag a box first.")
            else:
                more = ", more are coming" if self.result.partial else ""
                self.message.emit(
                    f"Key {key}: there are only {len(views)} proposals for this box{more}."
                )
            return
        self._picked_by_user = True
        self._select(index)

    def _select(self, index: int) -> None:
        if self.result is None or not self.result.views:
            index = -1
        elif not 0 <= index < len(self.result.views):
            return
        self.current = index
        self.current_changed.emit(index)

    def cycle(self, step: int) -> None:
        if self.result is not None and self.result.views:
            self.pick((self.current + step) % len(self.result.views))

    def discard(self) -> None:
        if self._pending is not None:
            self._pending.cancel.cancel()
            self._pending = None
            self.busy_changed.emit(False)
        had = self.result is not None or self.box is not None
        self.result, self.current, self.box, self.points = None, -1, None, ()
        self.started_at = None
        if had:
            self.proposals_changed.emit(None)
            self.current_changed.emit(-1)

    def accept(self) -> bool:
        """Turn the current proposal into an annotation (polygons are traced on a worker)."""
        if self.result is None or self.current < 0 or not self.label:
            if not self.label:
                self.message.emit("Choose a label first (L).")
            return False
        view = self.result.views[self.current]
        proposal = view.proposal
        seconds = time.perf_counter() - self.started_at if self.started_at else None
        label, tolerance, index, key = self.label, self.tolerance, self.current, self._image_key
        min_island = self.min_island
        latency = self.result.seconds
        self.pending_accepts += 1
        self.discard()  # the window moves on at once; the outline is traced meanwhile

        def trace() -> tuple[Polygon, ...]:
            return tuple(proposal.patch.to_polygons(tolerance, min_island))

        def done(polygons: tuple[Polygon, ...]) -> None:
            self.pending_accepts -= 1
            if not polygons:
                self.message.emit("The chosen mask is too small to outline; pick another.")
                return
            ann = Annotation(
                label=label,
                polygons=polygons,
                score=proposal.quality,
                source=proposal.source,
                seconds=round(seconds, 2) if seconds is not None else None,
            )
            self.accepted.emit(AcceptedProposal(ann, index, latency, key))

        def failed(exc: BaseException) -> None:
            self.pending_accepts -= 1
            self.message.emit(f"Could not outline the mask: {exc}")

        submit(self._pool, trace, on_done=done, on_error=failed)
        return True


def _same(a: ProposalView, b: ProposalView) -> bool:
    """The same mask (engines may re-create proposal objects when they re-rank)."""
    if a is b:
        return True
    pa, pb = a.proposal.patch, b.proposal.patch
    return (pa.x, pa.y, pa.mask.shape) == (pb.x, pb.y, pb.mask.shape) and bool(
        (pa.mask == pb.mask).all()
    )
