"""A helper process for the classic engine's C calls that hold the GIL (`gridsolve`).

PyMaxflow builds its graph and computes the maximum flow without releasing the GIL, and so does
scikit-image's minimum-cost path search: on the engine thread a cut of a fine window held it for
tens of milliseconds, and the GUI thread, which needs the GIL for every Qt callback, froze for as
long (ADR 0105). `call(fn, *args)` runs a module-level function in one persistent helper process
instead, where it holds only that process's GIL; the engine thread waits for the answer with its own
GIL released. It is opt-in (`SCUBASTEVE_OFFLOAD=1`): measured on a quiet machine it made proposals
slower and GUI stalls longer (ADR 0105), so by default every call runs on the calling thread.

Robustness over speed: the helper (`python -c`, or in a frozen app a multiprocessing child, which
the launcher's `multiprocessing.freeze_support` serves) starts in the background and connects back
through a local socket (a named pipe on Windows) once it has imported what it needs. The first call
waits for that (a few seconds at most); a call that finds no helper ready, or a helper that dies,
hangs or fails, runs on the calling thread, and a dropped helper is replaced (a few times at most).
One thread uses the helper at a time; a second caller meanwhile works on its own thread. The helper
ends when its connection closes, so it never outlives the app, even one that exits without clean-up.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from scubasteve.inference.classic import gridsolve

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a call may take in the helper before the helper is dropped and the call runs here.
CALL_TIMEOUT_S = 30.0
#: Seconds the first call waits for a starting helper (with the GIL released) before it works
#: in-thread: a cut in-thread freezes the window, a wait only delays the first proposals.
START_WAIT_S = 10.0
#: Helpers started per process at most (a helper that keeps dying is not restarted for ever).
MAX_STARTS = 3
#: Set to "1" to run the GIL-bound solvers in the helper process. Off by default: on a quiet
#: 2-core machine the helper made proposals slower and GUI stalls longer (ADR 0105, measured).
ENV_SWITCH = "SCUBASTEVE_OFFLOAD"

#: What the helper runs (`python -c`): read its settings from stdin, then serve.
_CHILD_CODE = (
    "import pickle, sys; a = pickle.load(sys.stdin.buffer); sys.path[:] = a[0]; "
    "from scubasteve.inference.classic.offload import serve; serve(*a[1:])"
)


def serve(address: Any, authkey: bytes, modules: tuple[str, ...]) -> None:
    """The helper's side: import `modules`, connect (which says it is ready), then answer calls.

    Each message is (fn, args); the answer ("ok", result) or ("error", text). Ends when the
    connection closes, that is when the app ends.
    """
    from multiprocessing.connection import Client

    for name in modules:
        with contextlib.suppress(ImportError):  # a call that needs it fails, and runs in-thread
            importlib.import_module(name)
    try:
        conn = Client(address, authkey=authkey)
    except OSError:
        return
    try:
        while True:
            try:
                fn, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                result = fn(*args)
            except Exception as exc:  # reported; the caller runs the call itself
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("ok", result))
    except KeyboardInterrupt:  # Ctrl+C in the app's terminal reaches the helper too
        return


class _Child:
    """A started helper process: a subprocess, or a multiprocessing one in a frozen app."""

    def __init__(self, address: Any, authkey: bytes, modules: tuple[str, ...]) -> None:
        import sys

        if getattr(sys, "frozen", False):
            # The frozen app is no Python interpreter: multiprocessing re-runs it as a child,
            # and its launcher's freeze_support turns that run into the helper.
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            self._process: Any = ctx.Process(
                target=serve, args=(address, authkey, modules), daemon=True
            )
            self._process.start()
            self._popen = None
            return
        import pickle
        import subprocess

        # Not multiprocessing here: its children re-run the main script, which a script
        # without an `if __name__ == "__main__"` guard would do all over again.
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self._popen = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE], stdin=subprocess.PIPE, creationflags=flags
        )
        assert self._popen.stdin is not None
        try:
            self._popen.stdin.write(pickle.dumps((list(sys.path), address, authkey, modules)))
            self._popen.stdin.close()
        except OSError:
            self.kill()
            raise

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return bool(self._process.is_alive())

    def kill(self) -> None:
        with contextlib.suppress(Exception):  # it is gone already: nothing to clean up
            if self._popen is not None:
                self._popen.kill()
                self._popen.wait(5)
            else:
                self._process.kill()
                self._process.join(5)


class Helper:
    """One helper process, started on demand, shared by the threads of this process."""

    def __init__(self, modules: tuple[str, ...] = ()) -> None:
        """`modules`: what the helper imports before it reports ready."""
        self._modules = tuple(modules)
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._listener: Any = None
        self._accepted: list[Any] = []  # the helper's connection, once it has connected
        self._conn: Any = None
        self._pid = 0  # the process that started the helper (a forked child must not use it)
        self._starts = 0
        self._waited = False  # whether a call has waited for the current helper to start

    @property
    def enabled(self) -> bool:
        return os.environ.get(ENV_SWITCH, "0") == "1"

    def warm(self) -> None:
        """Start the helper now (in the background), so it is ready when the first call comes."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return
        try:
            self._connection(wait=False)
        finally:
            self._lock.release()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, in the helper when it is ready and free, else on this thread.

        `fn` must be a module-level function; arguments and result are pickled.
        """
        if not self.enabled or not self._lock.acquire(blocking=False):
            return fn(*args)
        try:
            conn = self._connection(wait=True)
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
            return cast(T, value)  # what `fn` returned, sent back by the helper
        finally:
            self._lock.release()

    def close(self) -> None:
        """End the helper (a new one starts on the next call)."""
        with self._lock:
            self._drop()
            self._starts = 0

    def _connection(self, wait: bool) -> Any:
        """The ready helper's connection; None while it starts or when none can run. Lock held.

        `wait`: the first time, wait up to `START_WAIT_S` for a starting helper.
        """
        if self._child is not None and self._pid != os.getpid():
            self._forget()  # inherited through fork: the parent's helper, not ours
        if self._child is None:
            if self._starts >= MAX_STARTS:
                return None
            self._start()
        if self._child is None or self._conn is not None:
            return self._conn
        if wait and not self._waited:
            self._waited = True
            end = time.monotonic() + START_WAIT_S
            while not self._accepted and self._child.alive() and time.monotonic() < end:
                time.sleep(0.01)
        if not self._accepted:
            return None if self._child.alive() else self._drop()
        self._conn = self._accepted[0]
        return self._conn

    def _start(self) -> None:
        import secrets
        from multiprocessing.connection import Listener

        self._starts += 1
        authkey = secrets.token_bytes(32)
        try:
            listener = Listener(authkey=authkey)  # a local socket, or a named pipe on Windows
            child = _Child(listener.address, authkey, self._modules)
        except Exception as exc:  # no processes here (a sandbox, a broken install)
            log.warning("classic engine helper process did not start (%s); working in-thread", exc)
            return
        accepted: list[Any] = []

        def accept() -> None:
            with contextlib.suppress(Exception):  # closed: the helper was dropped meanwhile
                accepted.append(listener.accept())
            with contextlib.suppress(Exception):
                listener.close()

        threading.Thread(target=accept, daemon=True, name="classic-helper-accept").start()
        self._child, self._listener, self._accepted = child, listener, accepted
        self._conn, self._pid, self._waited = None, os.getpid(), False

    def _drop(self) -> None:
        """End the helper (if any) and forget it. Returns None for `_connection`."""
        child, conn, listener = self._child, self._conn, self._listener
        self._forget()
        for closable in (conn, listener):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
        if child is not None:
            child.kill()

    def _forget(self) -> None:
        self._child, self._listener, self._accepted, self._conn, self._pid = None, None, [], None, 0


_helper = Helper(gridsolve.MODULES)


def call(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the shared helper process (see the module docstring)."""
    return _helper.call(fn, *args)


def warm() -> None:
    """Start the shared helper process in the background, when it is enabled (opt-in)."""
    _helper.warm()
