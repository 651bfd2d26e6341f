"""Run functions on thread pools and get their result back on the GUI thread.

A job returns plain data (arrays, dataclasses, QImages, which are safe to build off the GUI thread) and
never touches a widget. Results come back through a relay QObject that lives on the GUI thread, so the
callbacks always run there, whatever thread emitted the signal.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Relay(QObject):
    """Carries one job's outcome to the GUI thread (queued, because it lives there)."""

    finished = Signal(object)
    errored = Signal(object)

    def __init__(self, on_done: Callback | None, on_error: Callback | None) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        self.finished.connect(self._deliver_done)
        self.errored.connect(self._deliver_error)

    @Slot(object)
    def _deliver_done(self, result: Any) -> None:
        _LIVE.discard(self)
        if self._on_done is not None:
            self._on_done(result)

    @Slot(object)
    def _deliver_error(self, exc: Any) -> None:
        _LIVE.discard(self)
        if self._on_error is not None:
            self._on_error(exc)
        else:
            log.error("background job failed: %s", exc)


# Relays must outlive their job; they remove themselves once delivered.
_LIVE: set[_Relay] = set()


class FunctionJob(QRunnable):
    """`fn(*args)` on a pool thread; its return value or exception is relayed to the GUI thread."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._args = args
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn(*self._args)
        except BaseException as exc:  # every failure must reach the GUI as a message
            if not _is_expected(exc):
                log.debug("job %s failed:\n%s", self._fn, traceback.format_exc())
            self._relay.errored.emit(exc)
        else:
            self._relay.finished.emit(result)


def _is_expected(exc: BaseException) -> bool:
    from scubasteve.core.errors import ScubaSteveError
    from scubasteve.inference.base import Cancelled

    return isinstance(exc, (Cancelled, ScubaSteveError))


def submit(
    pool: QThreadPool,
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callback | None = None,
    on_error: Callback | None = None,
    priority: int = 0,
) -> None:
    """Run `fn(*args)` on `pool`; call `on_done(result)` or `on_error(exc)` on the GUI thread."""
    relay = _Relay(on_done, on_error)
    _LIVE.add(relay)
    pool.start(FunctionJob(fn, args, relay), priority)


def make_pool(threads: int, name: str) -> QThreadPool:
    pool = QThreadPool()
    pool.setMaxThreadCount(threads)
    pool.setObjectName(name)
    # Idle threads are kept so that back-to-back jobs do not pay for thread start-up.
    pool.setExpiryTimeout(-1)
    return pool
