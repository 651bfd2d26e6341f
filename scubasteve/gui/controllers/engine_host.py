"""The engine host: one thread owns the active `MaskProposer`; every model call runs there.

Engines are stateful (`set_image` caches per-image work), so their calls are serialised on one
pool thread and the engine object is only ever touched from it. A proposal request carries its own
image and `CancelToken`; a newer request cancels the older one, whose result is then dropped by id.
A learned engine that fails while proposing (out of GPU memory, a damaged model) is handed over to
the classic engine by `inference.fallback.ClassicFallback`, which the engine registry wraps around
every learned engine; the host only tells the user, once, and updates the status bar. An engine
that cannot even be created is replaced here by the classic engine. Failures are told apart by
type: a box outside the image is checked here before the engine runs (`BadBox`, reported, the
engine stays).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import BadBox
from scubasteve.core.geometry import Box
from scubasteve.gui.render import ProposalSet, ProposalView, build_view, build_views
from scubasteve.gui.workers import make_pool, submit
from scubasteve.inference.base import MaskProposer, PromptPoint, validate_box
from scubasteve.inference.fallback import ClassicFallback

log = logging.getLogger(__name__)

#: name, device -> a ready engine. Called on the engine thread (it may import torch).
ProposerFactory = Callable[[str, str], MaskProposer]

FALLBACK_ENGINE = "classic"


def default_factory(name: str, device: str, weights: str | None = None) -> MaskProposer:
    """The registry's engine `name`; `weights` names the model of the settings (None: defaults).

    An engine alone (isnet, deepmask, sam2) takes that model only when it is of its own kind, so
    a DeepMask model named in the settings does not stop the IS-Net or SAM 2 engine; the ensemble
    takes any (its kind chooses the learned engine)."""
    from scubasteve.inference.engines import create_proposer, learned_kind  # heavy: engine thread

    if weights and name in ("isnet", "sam2") and learned_kind(weights) != name:
        weights = None
    return create_proposer(name, device=device, weights=weights or None)


@dataclass(eq=False)
class ProposalRequest:
    """One box (plus corrective clicks) to propose masks for. `image`: (H, W, 3) uint8 RGB.

    `previous`: the mask the clicks correct (the proposal shown when they were made; None for a
    fresh box), handed to the engine's `propose`.
    """

    request_id: int
    image_key: str
    image: np.ndarray
    box: Box
    points: tuple[PromptPoint, ...] = ()
    k: int = 10
    previous: MaskPatch | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    submitted: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class EngineInfo:
    """The engine that now serves: `name` as chosen, `serving` the engines that answer (the
    ensemble's members). `weights_missing`: why the recommended model cannot run, with how to get
    it ("" when it runs or a learned engine already serves)."""

    name: str
    device: str
    note: str = ""
    weights_missing: str = ""
    serving: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the status bar shows, e.g. "ensemble (isnet + classic)"."""
        if not self.serving or self.serving == (self.name,):
            return self.name
        return f"{self.name} ({' + '.join(self.serving)})"


#: The model the window recommends while no learned engine serves: IS-Net, one download, no
#: training, and much better masks on the large objects of a first day (docs/proposals.md).
RECOMMENDED_MODEL = "isnet-general-use"
#: Engines whose masks are good enough that the window does not recommend another download.
_LEARNED = ("isnet", "sam2")


def weights_problem() -> str:
    """Why IS-Net, the recommended model, is unavailable here, with the download command, from the
    engine registry ("" if it runs, or unknown)."""
    try:
        from scubasteve.inference.engines import engine_status
    except ImportError:
        return ""
    try:
        statuses = engine_status()
    except Exception as exc:  # a broken registry must not stop the window
        return str(exc)
    return next((s.reason for s in statuses if s.name == "isnet" and not s.available), "")


def _serving(proposer: MaskProposer) -> tuple[str, ...]:
    """The names of the engines that answer (a composite's members, or the engine itself)."""
    return tuple(e.name or "?" for e in proposer.engines)


def is_weights_missing(exc: BaseException | None) -> bool:
    """True for a missing-weights error, also when an engine wrapped it in its own error."""
    from scubasteve.weights import WeightsNotInstalled

    while exc is not None:
        if isinstance(exc, WeightsNotInstalled):
            return True
        exc = exc.__cause__
    return False


class _EngineState:
    """Lives on the engine thread only."""

    def __init__(self) -> None:
        self.proposer: MaskProposer | None = None
        self.name = ""
        self.image_key = ""
        self.fallback_reported = False


class EngineHost(QObject):
    """Runs engine calls on its own thread and reports back on the GUI thread."""

    engine_ready = Signal(object)  # EngineInfo
    engine_error = Signal(str)  # a message for the user; the classic engine takes over
    proposals_ready = Signal(object)  # ProposalSet
    proposal_partial = Signal(int, object)  # request id, ProposalView found so far
    proposals_failed = Signal(int, str)  # request id, message

    def __init__(
        self, factory: ProposerFactory | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._factory = factory or default_factory
        self._pool = make_pool("engine")
        self._state = _EngineState()
        self.name = ""
        self.device = "auto"
        self.fell_back = False
        self._last_id = 0

    def new_request_id(self) -> int:
        """An id no other requester of this host has: results go to every listener, by id."""
        self._last_id += 1
        return self._last_id

    # -- engine choice ------------------------------------------------------------------------------

    def start(self, name: str, device: str) -> None:
        """Create engine `name` in the background (falls back to classic if it cannot be made)."""
        self.name, self.device, self.fell_back = name, device, False
        submit(
            self._pool,
            self._create,
            name,
            device,
            on_done=self._created,
            on_error=self._create_failed,
        )

    def _create(self, name: str, device: str) -> EngineInfo:
        state = self._state
        proposer = self._factory(name, device)
        state.proposer, state.name, state.image_key = proposer, name, ""
        state.fallback_reported = False
        return self._info(proposer, name)

    @staticmethod
    def _info(proposer: MaskProposer, name: str) -> EngineInfo:
        serving = _serving(proposer)
        return EngineInfo(
            name=proposer.name or name,
            device=str(proposer.device or "cpu"),
            note=str(proposer.note or ""),
            weights_missing="" if set(serving) & set(_LEARNED) else weights_problem(),
            serving=serving,
        )

    def _report_fallback(self, state: _EngineState) -> None:
        """Tell the user, once, that the learned engine failed and the classic one took over."""
        proposer = state.proposer
        if not isinstance(proposer, ClassicFallback) or not proposer.failure:
            return
        if state.fallback_reported:
            return
        state.fallback_reported = True
        self.fell_back = True
        what = "ran out of GPU memory" if proposer.out_of_memory else f"failed ({proposer.failure})"
        self.engine_error.emit(
            f"The {proposer.primary.name} engine {what}. Switched to the {FALLBACK_ENGINE} engine "
            "on the CPU."
        )
        self.engine_ready.emit(self._info(proposer, state.name))

    def _created(self, info: EngineInfo) -> None:
        self.engine_ready.emit(info)

    def _create_failed(self, exc: BaseException) -> None:
        message = f"The {self.name} engine could not start: {exc}"
        if self.device not in ("cpu", "auto") and not is_weights_missing(exc):
            # The device may be what failed (no CUDA, driver trouble): try the same engine on the CPU.
            self.engine_error.emit(message + ". Trying it on the CPU.")
            self.device = "cpu"
            submit(self._pool, self._create, self.name, "cpu", on_done=self._created,
                   on_error=self._create_failed)  # fmt: skip
            return
        if self.name == FALLBACK_ENGINE:
            self.engine_error.emit(message + ". No engine is available; draw polygons by hand.")
            return
        self.engine_error.emit(message + f". Using the {FALLBACK_ENGINE} engine instead.")
        self.fell_back = True
        self.name = FALLBACK_ENGINE
        submit(self._pool, self._create, FALLBACK_ENGINE, "cpu", on_done=self._created,
               on_error=self._create_failed)  # fmt: skip

    # -- per-image and per-box work -----------------------------------------------------------------

    def set_image(self, key: str, image: np.ndarray) -> None:
        """Let the engine prepare `image` now (when it opens), before the first box."""
        submit(self._pool, self._set_image, key, image, on_error=lambda exc: None)

    def _set_image(self, key: str, image: np.ndarray) -> None:
        state = self._state
        if state.proposer is not None and state.image_key != key:
            state.image_key = ""
            state.proposer.set_image(image)
            state.image_key = key

    def prefetch(self, key: str, image: np.ndarray | None) -> None:
        """Let engines that can (SAM 2) prepare the next image in the background."""
        if image is not None:
            submit(self._pool, self._prefetch, key, image, on_error=lambda exc: None)

    def _prefetch(self, key: str, image: np.ndarray) -> None:
        proposer = self._state.proposer
        if proposer is not None and self._state.image_key != key:
            proposer.prefetch(image)  # starts its own thread: the engine thread stays free

    def propose(self, request: ProposalRequest) -> None:
        submit(
            self._pool,
            self._propose,
            request,
            on_done=self.proposals_ready.emit,
            on_error=lambda exc: self._propose_failed(request, exc),
        )

    def _propose(self, request: ProposalRequest) -> ProposalSet:
        request.cancel.raise_if_cancelled()  # skip requests made obsolete while they waited in the queue
        state = self._state
        if state.proposer is None:
            raise RuntimeError("the engine is still starting")
        height, width = request.image.shape[:2]
        try:
            validate_box(request.box, width, height)
        except ValueError as exc:
            raise BadBox(str(exc)) from exc
        ready: dict[int, ProposalView] = {}

        def on_proposal(p) -> None:  # type: ignore[no-untyped-def]
            # Show each proposal as soon as it exists; the final list reuses these views.
            if not request.cancel.cancelled and len(ready) < request.k:
                view = build_view(request.image, p, request.box)
                ready[id(p)] = view
                self.proposal_partial.emit(request.request_id, view)

        try:
            self._set_image(request.image_key, request.image)
            request.cancel.raise_if_cancelled()
            t0 = time.perf_counter()
            proposals = state.proposer.propose(
                request.box,
                k=request.k,
                points=request.points,
                previous=request.previous,
                cancel=request.cancel,
                on_proposal=on_proposal,
            )
            engine_seconds = time.perf_counter() - t0
        except Cancelled:
            raise
        except Exception:  # the box was checked above: the classic engine itself failed
            state.image_key = ""
            raise
        finally:
            self._report_fallback(state)
        request.cancel.raise_if_cancelled()
        views = build_views(request.image, proposals, request.box, ready)
        return ProposalSet(
            request_id=request.request_id,
            image_key=request.image_key,
            box=request.box,
            points=request.points,
            views=views,
            engine=state.name,
            seconds=engine_seconds,
        )

    def _propose_failed(self, request: ProposalRequest, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            return
        self.proposals_failed.emit(request.request_id, f"{type(exc).__name__}: {exc}")

    def wait_idle(self, msecs: int = 30000) -> bool:
        """Block until queued engine work is done (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)
