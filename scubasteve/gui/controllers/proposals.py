"""The box-to-annotation loop: request proposals, keep the current one, accept or discard.

State lives here, not in the canvas: the box, the corrective points, the latest `ProposalSet`, which
proposal is current, and when the user started (for `Annotation.seconds`). A request with clicks
also carries the proposal shown when it was made (`previous`: the mask being corrected). A newer
request cancels the pending one; results whose id is not the latest are dropped.

Nothing the user saw is lost to a slip: before each click the controller keeps what was shown, so
removing the click gives it back at once (not a new guess from the engine), and a new box sets the
shown proposals aside, one Ctrl+Z away (`undo`). While proposals stream in each keeps its slot;
the strip is sorted once when the engine's ranked list arrives (`proposal_order`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThreadPool, Signal

from scubasteve.core.annotation import Annotation, MaskPatch
from scubasteve.core.cancel import CancelToken
from scubasteve.core.geometry import Box, Polygon
from scubasteve.core.settings import Settings
from scubasteve.gui.controllers.engine_host import EngineHost, ProposalRequest
from scubasteve.gui.controllers.proposal_order import RERANK_GRACE_S, find, settle
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


#: Boxes whose proposals a new box set aside, kept for Ctrl+Z (the oldest go first).
MAX_ASIDE = 10


@dataclass
class _Shown:
    """What the user saw for a box at one moment: enough to show it again without the engine."""

    box: Box | None
    points: tuple[PromptPoint, ...]
    result: ProposalSet | None
    current: int
    picked: bool
    started_at: float | None
    clicks: list[_Shown]  # what was shown before each of `points` was clicked, oldest first


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
        self._clicks: list[_Shown] = []  # what was shown before each click of this box
        self._aside: list[_Shown] = []  # earlier boxes' proposals, set aside by a new box
        self.moved: list[int] | None = None  # slots the final sort moved (see proposal_order)
        self._before_sort: list[ProposalView] = []
        self._reranked_at = float("-inf")
        engine.proposals_ready.connect(self._on_ready)
        engine.proposal_partial.connect(self._on_partial)
        engine.proposals_failed.connect(self._on_failed)

    def apply_settings(self, new: Settings, old: Settings) -> None:
        """Proposals per box, and how accepted masks become outlines."""
        self.k = new.proposals
        self.tolerance, self.min_island = new.polygon_tolerance, new.min_island_area

    def outline(self, patch: MaskPatch) -> list[Polygon]:
        """A mask's outline as the settings say (tolerance, specks dropped); any thread."""
        return patch.to_polygons(self.tolerance, self.min_island)

    def finish_accepts(self, seconds: float) -> bool:
        """Wait (running the event loop) until accepted masks still being outlined have become
        annotations, at most `seconds`; on close, so that nothing accepted is lost."""
        deadline = time.monotonic() + seconds
        while self.pending_accepts and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return not self.pending_accepts

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

        The previous box's proposals go at once, so that Enter cannot accept them for this box;
        if they were shown they are set aside, and `undo` brings them back.
        """
        if self.result is not None and self.result.views and self.box is not None:
            self._aside = [*self._aside, self._snapshot()][-MAX_ASIDE:]
            self.message.emit(
                "The previous box's proposals were set aside: Ctrl+Z brings them back."
            )
        self.points, self._clicks = (), []
        request_id = self._submit(box)
        if self.result is not None:
            self.result, self.current = None, -1
            self.proposals_changed.emit(None)
            self.current_changed.emit(-1)
        return request_id

    def add_point(self, x: float, y: float, positive: bool) -> int:
        if self.box is None:
            return -1
        self._clicks.append(self._snapshot())
        self.points = (*self.points, PromptPoint(float(x), float(y), positive))
        return self._submit(self.box)

    def remove_last_point(self) -> bool:
        """Undo the last corrective click: what was shown before it comes back, at once."""
        if not self._clicks:
            return False
        self._restore(self._clicks.pop())
        return True

    def undo(self) -> bool:
        """Ctrl+Z while proposals are open: the last click, else this box (and the proposals a new
        box set aside come back). False when there was nothing to undo here (the document's turn)."""
        if self.remove_last_point():
            return True
        if not self.active:
            return False
        if self._aside:
            *self._aside, shown = self._aside
            self._restore(shown)
            self.message.emit("Back to the previous box's proposals.")
        else:
            self.discard()
        return True

    def _snapshot(self) -> _Shown:
        return _Shown(self.box, self.points, self.result, self.current, self._picked_by_user,
                      self.started_at, list(self._clicks))  # fmt: skip

    def _restore(self, shown: _Shown) -> None:
        self._cancel_pending()
        self.box, self.points, self.result = shown.box, shown.points, shown.result
        self._picked_by_user, self.started_at = shown.picked, shown.started_at
        self._clicks = list(shown.clicks)
        self._forget_sort()
        if (self.result is None or self.result.partial) and self.box is not None:
            # Not all had arrived (that request was cancelled since): ask again.
            self.result, self.current = None, -1
            self._submit(self.box)
            self.proposals_changed.emit(None)
            self.current_changed.emit(-1)
            return
        self.current = shown.current
        self.proposals_changed.emit(self.result)
        self.current_changed.emit(self.current if self.result is not None else -1)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel.cancel()
            self._pending = None
            self.busy_changed.emit(False)

    def _forget_sort(self) -> None:
        self.moved, self._before_sort, self._reranked_at = None, [], float("-inf")

    def _submit(self, box: Box) -> int:
        if self._image is None:
            return -1
        if self.started_at is None:
            self.started_at = time.perf_counter()
        if self._pending is not None:
            self._pending.cancel.cancel()
        self.box = box
        request = ProposalRequest(
            request_id=self._engine.new_request_id(),
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
    def resort_grace_left(self) -> float:
        """Seconds during which a pick key still means the slots as they were before the sort."""
        return max(0.0, RERANK_GRACE_S - (time.monotonic() - self._reranked_at))

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
        first = result is None or result.request_id != request_id
        if result is None or first:
            self.first_latency_measured.emit(time.perf_counter() - pending.submitted)
            result = ProposalSet(pending.request_id, pending.image_key, pending.box, pending.points,
                                 [], "", 0.0, partial=True)  # fmt: skip
            self._picked_by_user = False
            self._forget_sort()
        # Each arrival takes the next slot and keeps it: nothing moves while the user looks.
        self.result = dataclasses.replace(result, views=[*result.views, view])
        self.proposals_changed.emit(self.result)
        if first:
            self._select(0)

    def _on_ready(self, result: ProposalSet) -> None:
        if self._pending is None or result.request_id != self._pending.request_id:
            self.dropped_stale += 1
            return
        latency = time.perf_counter() - self._pending.submitted
        shown = (
            self.result
            if self.result is not None and self.result.request_id == result.request_id
            else None
        )
        keep = None
        if shown is not None and self._picked_by_user and 0 <= self.current < len(shown.views):
            keep = shown.views[self.current]
        self._pending = None
        self.busy_changed.emit(False)
        if shown is None:
            self.first_latency_measured.emit(latency)
        self.latency_measured.emit(latency)
        settled = settle(shown.views if shown is not None else [], result.views, keep)
        self.result = dataclasses.replace(result, views=settled.views)
        self._forget_sort()
        if settled.reranked and shown is not None:
            self.moved, self._before_sort = settled.moved, list(shown.views)
            self._reranked_at = time.monotonic()
        if not settled.views:
            self.message.emit(
                "No proposal for this box; try a tighter box or the polygon tool (P)."
            )
        self.proposals_changed.emit(self.result)
        self._select(max(settled.current, 0) if settled.views else -1)

    def _on_failed(self, request_id: int, message: str) -> None:
        if self._pending is None or request_id != self._pending.request_id:
            return
        self._pending = None
        self.busy_changed.emit(False)
        self.message.emit(f"No proposals: {message}")

    # -- choosing -----------------------------------------------------------------------------------

    def pick(self, index: int) -> None:
        """The user chose proposal `index` (kept when more proposals arrive).

        A key pressed right after the final sort means the slot as the user saw it before."""
        views = self.result.views if self.result is not None else []
        recent = time.monotonic() - self._reranked_at < RERANK_GRACE_S
        if recent and 0 <= index < len(self._before_sort):
            now = find(views, self._before_sort[index])
            index = now if now >= 0 else index
        self._choose(index)

    def _choose(self, index: int) -> None:
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
            self._choose((self.current + step) % len(self.result.views))

    def discard(self) -> None:
        """Drop the box, its clicks and any proposals set aside (Esc, accept, another image)."""
        self._cancel_pending()
        had = self.result is not None or self.box is not None
        self.result, self.current, self.box, self.points = None, -1, None, ()
        self.started_at = None
        self._clicks, self._aside = [], []
        self._forget_sort()
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
            return tuple(proposal.patch.to_polygons(tolerance, min_island))  # as at the accept

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
