"""Run functions on thread pools and get their result back on the GUI thread.

A job returns plain data (arrays, dataclasses, QImages, which are safe to build off the GUI thread) and
never touches a widget. Results come back through a dispatcher QObject that lives on the GUI thread, so
the callbacks always run there, whatever thread emitted the signal.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Dispatcher(QObject):
    """Carries job outcomes to the GUI thread (queued, because it lives there).

    One long-lived object for all jobs: a QObject per job would have to be destroyed while its own
    queued call is still being delivered, which crashes.
    """

    finished = Signal(object, object)  # callback, result
    errored = Signal(object, object)  # callback, exception

    def __init__(self) -> None:
        super().__init__()
        self.finished.connect(self._deliver)
        self.errored.connect(self._deliver_error)

    @Slot(object, object)
    def _deliver(self, callback: Callback | None, result: Any) -> None:
        if callback is not None:
            callback(result)

    @Slot(object, object)
    def _deliver_error(self, callback: Callback | None, exc: Any) -> None:
        if callback is not None:
            callback(exc)
        else:
            log.error("background job failed: %s", exc)


_DISPATCHER: _Dispatcher | None = None


def _dispatcher() -> _Dispatcher:
    """The dispatcher, created on first use from the GUI thread (where `submit` is called)."""
    global _DISPATCHER
    if _DISPATCHER is None:
        _DISPATCHER = _Dispatcher()
    return _DISPATCHER


class FunctionJob(QRunnable):
    """`fn(*args)` on a pool thread; its return value or exception is relayed to the GUI thread."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_done: Callback | None,
        on_error: Callback | None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._args = args
        self._on_done = on_done
        self._on_error = on_error
        self._dispatcher = _dispatcher()

    def run(self) -> None:
        try:
            result = self._fn(*self._args)
        except BaseException as exc:  # every failure must reach the GUI as a message
            if not _is_expected(exc):
                log.debug("job %s failed:\n%s", self._fn, traceback.format_exc())
            self._dispatcher.errored.emit(self._on_error, exc)
        else:
            self._dispatcher.finished.emit(self._on_done, result)


def _is_expected(exc: BaseException) -> bool:
    from scubasteve.core.cancel import Cancelled
    from scubasteve.core.errors import ScubaSteveError

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
    pool.start(FunctionJob(fn, args, on_done, on_error), priority)


def prepare_worker_imports() -> None:
    """Import on the GUI thread what workers would otherwise import at the same time.

    Pillow loads all its format plugins the first time a file is not recognised; two workers doing
    that at once (a broken image and a preload) crashed the process inside the import machinery in
    about one test run in four (PySide6 hooks `__import__`). Loading them once here, early, takes
    ~0.1 s and removes that race.
    """
    from PIL import Image

    import scubasteve.io.images
    import scubasteve.io.labelme  # noqa: F401

    Image.init()


def make_pool(threads: int, name: str) -> QThreadPool:
    pool = QThreadPool()
    pool.setMaxThreadCount(threads)
    pool.setObjectName(name)
    # Idle threads are kept so that back-to-back jobs do not pay for thread start-up.
    pool.setExpiryTimeout(-1)
    return pool
