"""Errors and warnings that reach users: each names the file or value and the problem."""

from __future__ import annotations

import errno
from pathlib import Path


class ScubaSteveError(Exception):
    """Base class for errors the program reports to the user without a traceback."""


class InputError(ScubaSteveError, ValueError):
    """Bad input data: a file, a value or an argument. The message names it and says what is wrong.

    `path` is the file concerned (if any) and `where` a location inside it such as ``shapes[3]``.
    """

    def __init__(self, problem: str, path: str | Path | None = None, where: str | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.where = where
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if self.where:
            parts.append(self.where)
        prefix = ": ".join(parts)
        return f"{prefix}: {self.problem}" if prefix else self.problem


_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def is_disk_full(exc: OSError) -> bool:
    """True when `exc` says the disk (or the user's quota) is full."""
    return exc.errno in _DISK_FULL


def os_error_problem(exc: OSError, doing: str, what: str = "file") -> str:
    """The one wording of an `OSError` met reading or writing a file, as an `InputError` problem:
    "<what> not found", "is a folder, not a <what>", "the disk is full", or "<doing>: permission
    denied" / "<doing>: <the system's reason>"."""
    if isinstance(exc, FileNotFoundError):
        return f"{what} not found"
    if isinstance(exc, IsADirectoryError):
        return f"is a folder, not {'an' if what[:1] in 'aeiou' else 'a'} {what}"
    if is_disk_full(exc):
        return "the disk is full"
    reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
    return f"{doing}: {reason}"


class BadBox(InputError):
    """A box that covers no pixel of its image: the user's box, not the engine, is at fault."""


class Problem:
    """One thing wrong in an input file, for reports such as `scubasteve validate`.

    `where` locates it inside the file (``shapes[3]``, ``annotations[12]``); `severity` is "error"
    (the item cannot be used) or "warning" (it was used, possibly with a correction).
    """

    __slots__ = ("message", "path", "severity", "where")

    def __init__(
        self, message: str, path: str | Path | None = None, where: str = "", severity: str = "error"
    ):
        if severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', got {severity!r}")
        self.message = message
        self.path = Path(path) if path is not None else None
        self.where = where
        self.severity = severity

    def __str__(self) -> str:
        location = ": ".join(str(p) for p in (self.path, self.where) if p)
        return f"{location}: {self.severity}: {self.message}" if location else self.message

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"
