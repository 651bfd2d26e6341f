"""The one way to cancel long work: a `CancelToken` the caller sets and the work checks.

Engines (`propose(..., cancel=)`), weights downloads and imports, training and pre-annotation all
take a `CancelToken | None`; the work calls `raise_if_cancelled` between steps (a batch, a chunk
of bytes, a generator) and stops with `Cancelled`. Setting the token is thread-safe, so the GUI
thread cancels work that runs on a worker. No Qt here: the GUI's job handles carry a token too
(`scubasteve.gui.workers`). Decision record: docs/adr/0006-cancel-token-and-background-jobs.md.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside long work when its `CancelToken` was set; not an error to report."""


class CancelToken:
    """A flag the owner of some work sets so that the work stops at its next check."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop (from any thread); it raises `Cancelled` at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `Cancelled` if `cancel()` was called."""
        if self._event.is_set():
            raise Cancelled


def raise_if_cancelled(token: CancelToken | None) -> None:
    """`token.raise_if_cancelled()` for work whose token is optional (None: never cancelled)."""
    if token is not None and token._event.is_set():
        raise Cancelled
