"""A helper process for the classic engine's C calls that hold the GIL (PyMaxflow's cuts).

PyMaxflow builds its graph and computes the maximum flow without releasing the GIL: on the engine
thread a cut of a fine window held it for tens of milliseconds, and the GUI thread, which needs the
GIL for every Qt callback, froze for as long (ADR 0105). `call(fn, *args)` runs a module-level
function in one persistent helper process instead, where it holds only that process's GIL; the
engine thread waits for the answer with its own GIL released.

Robustness over speed: the helper starts in the background (spawn, as on Windows and macOS; a
frozen app's launcher calls `multiprocessing.freeze_support`) and calls run on the calling thread
until it has announced itself ready; a helper that dies, hangs or fails is dropped and the call
runs on the calling thread (a new helper is started later, a few times at most). Only one thread
uses the helper at a time; a second caller meanwhile runs on its own thread. The helper ends when
the pipe closes, so it never outlives the app, even one that exits without clean-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a call may take in the helper before the helper is dropped and the call runs here.
CALL_TIMEOUT_S = 30.0
#: Helpers started per process at most (a helper that keeps dying is not restarted for ever).
MAX_STARTS = 3
#: Set to "0" to run every call on the calling thread (for comparisons and debugging).
ENV_SWITCH = "SCUBASTEVE_OFFLOAD"

_READY = "ready"


def _serve(conn: Any) -> None:
    """The helper's loop: (fn, args) in, ("ok", result) or ("error", text) out, until EOF."""
    conn.send(_READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        try:
            result = fn(*args)
        except Exception as exc:  # reported; the caller runs the call itself
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", result))


class Helper:
    """One helper process, started on demand, shared by the threads of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._ready = False
        self._pid = 0  # the process that started the helper (a forked child must not use it)
        self._starts = 0

    @property
    def enabled(self) -> bool:
        return os.environ.get(ENV_SWITCH, "1") != "0"

    def warm(self) -> None:
        """Start the helper now (in the background), so it is ready when the first call comes."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return
        try:
            self._connection()
        finally:
            self._lock.release()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, in the helper when it is ready and free, else on this thread.

        `fn` must be a module-level function; arguments and result are pickled.
        """
        if not self.enabled or not self._lock.acquire(blocking=False):
            return fn(*args)
        try:
            conn = self._connection()
            if conn is None:
                return fn(*args)
            try:
                conn.send((fn, args))
                if not conn.poll(CALL_TIMEOUT_S):
                    raise TimeoutError(f"no answer within {CALL_TIMEOUT_S:g} s")
                status, value = conn.recv()
            except Exception as exc:  # a dead, hung or unpicklable helper: work here
                log.warning("classic engine helper process dropped (%s); working in-thread", exc)
                self._drop()
                return fn(*args)
            if status != "ok":
                log.warning("classic engine helper process failed (%s); retrying in-thread", value)
                return fn(*args)
            return value
        finally:
            self._lock.release()

    def close(self) -> None:
        """End the helper (a new one starts on the next call)."""
        with self._lock:
            self._drop()
            self._starts = 0

    def _connection(self) -> Any:
        """The ready helper's pipe; None while it starts or when none can run. Lock held."""
        if self._process is not None and self._pid != os.getpid():
            self._forget()  # inherited through fork: the parent's helper, not ours
        if self._process is None:
            if self._starts >= MAX_STARTS:
                return None
            self._start()
            return None
        if not self._ready:
            try:
                if not self._conn.poll(0):
                    return None if self._process.is_alive() else self._drop()
                self._ready = self._conn.recv() == _READY
            except Exception:
                return self._drop()
            if not self._ready:
                return self._drop()
        return self._conn

    def _start(self) -> None:
        import multiprocessing

        self._starts += 1
        try:
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_serve, args=(child,), daemon=True, name="scubasteve-classic-helper"
            )
            process.start()
            child.close()
        except Exception as exc:  # no processes here (sandbox, frozen app without support)
            log.warning("classic engine helper process did not start (%s); working in-thread", exc)
            return
        self._process, self._conn, self._ready, self._pid = process, parent, False, os.getpid()

    def _drop(self) -> None:
        """End the helper (if any) and forget it. Returns None for `_connection`."""
        process, conn = self._process, self._conn
        self._forget()
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        if process is not None:
            with contextlib.suppress(Exception):  # it is gone already: nothing to clean up
                process.kill()
                process.join(1.0)

    def _forget(self) -> None:
        self._process, self._conn, self._ready, self._pid = None, None, False, 0


_helper = Helper()


def call(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the shared helper process (see the module docstring)."""
    return _helper.call(fn, *args)


def warm() -> None:
    """Start the shared helper process in the background."""
    _helper.warm()
