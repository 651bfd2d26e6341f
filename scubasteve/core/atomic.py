"""Atomic file writes: a file is either its old self or completely the new one, never truncated.

The program's one implementation of the pattern (a temporary file in the same folder, fsync,
`os.replace`): in `core` so that the settings can use it too. JSON is read by
`scubasteve.io.json_files`; the weights store builds its verified installs from `temp_file_beside`
and `replace_with`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from scubasteve.core.errors import InputError, os_error_problem

#: A temporary file of ours older than this was left by a killed process (a write takes seconds).
STALE_TEMPORARY_SECONDS = 15 * 60
_STALE_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".NAME.")
_cleaned: set[Path] = set()


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Remove `.NAME.xxxxxxxx.tmp` files older than `STALE_TEMPORARY_SECONDS` from `folder`.

    They are what a process killed in the middle of `atomic_write_bytes` leaves. Done once per
    folder and process (the first write there); returns the files removed.
    """
    folder = Path(folder)
    if folder in _cleaned:
        return []
    _cleaned.add(folder)
    removed: list[Path] = []
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _STALE_NAME.match(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temp_file_beside(folder: Path, name: str) -> tuple[IO[bytes], Path]:
    """A new hidden temporary file ``.<name>.XXXX.tmp`` in `folder`, open for writing bytes.

    Raises the `OSError` of creating it (the caller words it). The caller writes, fsyncs and closes
    it, then `replace_with`s it, or unlinks it on failure.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    return os.fdopen(fd, "wb"), Path(tmp_name)


def replace_with(tmp: Path, path: Path, mode: int | None = None) -> None:
    """Move the finished temporary file `tmp` over `path` (same folder), durably.

    `mode`: the new file's permissions; None keeps those of the file replaced, and a new file gets
    0o666 less the umask (mkstemp alone would make it private).
    """
    if mode is None and path.exists():
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode & 0o7777
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then replace.

    The old file (if any) stays intact when anything fails: a read-only folder, a full disk, a kill.
    Errors are raised as `InputError` naming the file and the cause.
    """
    path = Path(path)
    folder = path.parent
    clean_stale_temporaries(folder)
    try:
        fh, tmp = temp_file_beside(folder, path.name)
    except OSError as exc:
        problem = os_error_problem(exc, "cannot write here", "folder")
        if isinstance(exc, PermissionError):
            problem += " (is the folder read-only?)"
        raise InputError(problem, folder) from exc
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace_with(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        problem = os_error_problem(exc, "could not write")
        raise InputError(f"{problem}; the previous file was kept unchanged", path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_folder(folder: Path) -> None:
    # Make the rename itself durable where the platform allows it (not on Windows).
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
