"""The one way to run background work: the pool policy, cancel tokens, results on the GUI thread.

A job returns plain data (arrays, dataclasses, QImages, which are safe to build off the GUI thread) and
never touches a widget. Results, errors and progress come back through one dispatcher QObject that
lives on the GUI thread, so the callbacks always run there, whatever thread emitted the signal.

- `make_pool(kind)`: the pool policy, one table (`POOLS`): short jobs share the window's "work"
  pool, writes are serialised on "save", the engine has its own thread, and each owner of long
  jobs (pre-annotation, learning, downloads) has a "long" thread, so no long job holds up a short one.
- `submit(pool, fn, *args, on_done=, on_error=)`: a short function on a pool thread; it cannot be
  cancelled (work that can takes a `CancelToken` itself, as engine requests do).
- `submit_job(pool, fn, *args, on_done=, on_error=, on_progress=)`: long work that takes
  ``progress=`` (a `core.progress.Progress`: done, total) and ``cancel=`` keywords; it gets the
  returned `Job`'s `CancelToken`, and its progress calls reach `on_progress` on the GUI thread.
- `on_gui_thread(callback)`: a function a job may call for each item it finishes (pre-annotation's
  images); the calls reach `callback` on the GUI thread, in order.

Cancelling is always a `scubasteve.core.cancel.CancelToken`: the job stops at its next check with
`Cancelled`, which reaches `on_error`. Decision record: docs/adr/0006-cancel-token-and-background-jobs.md.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.progress import Progress

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Dispatcher(QObject):
    """Carries job outcomes and progress to the GUI thread (queued, because it lives there).

    One long-lived object for all jobs: a QObject per job would have to be destroyed while its own
    queued call is still being delivered, which crashes.
    """

    finished = Signal(object, object)  # callback, result
    errored = Signal(object, object)  # callback, exception
    called = Signal(object, object)  # callback, tuple of arguments

    def __init__(self) -> None:
        super().__init__()
        self.finished.connect(self._deliver)
        self.errored.connect(self._deliver_error)
        self.called.connect(self._deliver_call)

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

    @Slot(object, object)
    def _deliver_call(self, callback: Callable[..., None], values: tuple[Any, ...]) -> None:
        callback(*values)


_DISPATCHER: _Dispatcher | None = None


def _dispatcher() -> _Dispatcher:
    """The dispatcher, created on first use from the GUI thread (where `submit` is called)."""
    global _DISPATCHER
    if _DISPATCHER is None:
        _DISPATCHER = _Dispatcher()
    return _DISPATCHER


class Job:
    """The handle of one background job: cancel it; its progress reaches the GUI thread."""

    def __init__(
        self,
        on_done: Callback | None = None,
        on_error: Callback | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self.token = CancelToken()
        self.on_done = on_done
        self.on_error = on_error
        self._on_progress = on_progress
        self._dispatcher = _dispatcher()

    def cancel(self) -> None:
        """Ask the job to stop at its next check (it then ends with `Cancelled` in `on_error`)."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def progress(self, done: int, total: int) -> None:
        """Called by the job, on any thread: `on_progress(done, total)` runs later on the GUI
        thread."""
        if self._on_progress is not None:
            self._dispatcher.called.emit(self._on_progress, (done, total))

    def _finish(self, result: Any) -> None:
        self._dispatcher.finished.emit(self.on_done, result)

    def _fail(self, exc: BaseException) -> None:
        if not _is_expected(exc):
            log.debug("background job failed:\n%s", "".join(traceback.format_exception(exc)))
        self._dispatcher.errored.emit(self.on_error, exc)


class _Runnable(QRunnable):
    """`fn(*args, **kwargs)` on a pool thread; its outcome goes to the `Job`."""

    def __init__(
        self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._job, self._fn, self._args, self._kwargs = job, fn, args, kwargs

    def run(self) -> None:
        try:
            result = self._fn(*self._args, **self._kwargs)
        except BaseException as exc:  # every failure must reach the GUI as a message
            self._job._fail(exc)
        else:
            self._job._finish(result)


def _is_expected(exc: BaseException) -> bool:
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
    pool.start(_Runnable(Job(on_done, on_error), fn, args, {}), priority)


def submit_job(
    pool: QThreadPool,
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callback | None = None,
    on_error: Callback | None = None,
    on_progress: Progress | None = None,
) -> Job:
    """Run `fn(*args, progress=job.progress, cancel=job.token)` on `pool` and return the `Job`.

    `on_progress(done, total)` gets each `progress(done, total)` call of `fn` on the GUI thread;
    `job.cancel()` makes `fn` stop with `Cancelled`, which reaches `on_error`.
    """
    job = Job(on_done, on_error, on_progress)
    pool.start(_Runnable(job, fn, args, {"progress": job.progress, "cancel": job.token}))
    return job


def on_gui_thread(callback: Callable[..., None]) -> Callable[..., None]:
    """A function that may be called on any thread: each call runs `callback` with the same
    arguments later on the GUI thread, in the order of the calls (a job's per-item results).
    Make it on the GUI thread."""
    dispatcher = _dispatcher()

    def call(*values: Any) -> None:
        dispatcher.called.emit(callback, values)

    return call


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


#: The pool policy: threads per kind of pool (see the module docstring).
POOLS = {
    "work": 2,  # short jobs of the window: image loads, traces, the folder scan, exports
    "save": 1,  # annotation files, written in the order the changes were made
    "engine": 1,  # the engine's calls: a stateful engine is touched by one thread (ADR 0501)
    "long": 1,  # one owner's long jobs (pre-annotation, learning, a download), one at a time
}


def make_pool(kind: str) -> QThreadPool:
    """A new pool of `kind` (a key of `POOLS`), for the object that owns that kind of work."""
    pool = QThreadPool()
    pool.setMaxThreadCount(POOLS[kind])
    pool.setObjectName(kind)
    # Idle threads are kept so that back-to-back jobs do not pay for thread start-up.
    pool.setExpiryTimeout(-1)
    return pool
