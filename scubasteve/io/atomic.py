"""Atomic file writes: a file is either its old self or completely the new one, never truncated."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then replace.

    The old file (if any) stays intact when anything fails: a read-only folder, a full disk, a kill.
    Errors are raised as `InputError` naming the file and the cause.
    """
    path = Path(path)
    folder = path.parent
    clean_stale_temporaries(folder)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except FileNotFoundError as exc:
        raise InputError("the folder does not exist", folder) from exc
    except PermissionError as exc:
        raise InputError(
            "cannot write here: permission denied (is the folder read-only?)", folder
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot create a file here: {exc.strerror}", folder) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno == errno.ENOSPC:
            raise InputError(
                "the disk is full; the previous file was kept unchanged", path
            ) from exc
        if isinstance(exc, PermissionError):
            raise InputError(
                "permission denied; the previous file was kept unchanged", path
            ) from exc
        raise InputError(f"could not write: {exc.strerror or exc}", path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(folder)


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


#: JSON nested deeper than this is refused: no annotation format needs it, and deeper documents
#: would exhaust Python's recursion in the code that walks them.
MAX_JSON_DEPTH = 64


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deeply lists and objects nest in JSON text (brackets inside strings do not count).

    Works on the text at C speed (a regex and numpy), so that a large file costs no Python walk.
    """
    bare = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = np.isin(codes, (91, 123)).astype(np.int32) - np.isin(codes, (93, 125))
    return int(np.cumsum(steps).max(initial=0))


def json_safe(value: Any) -> tuple[Any, int]:
    """The value with NaN and infinite numbers as null, and how many were replaced.

    JSON has no NaN; Python's reader accepts it but strict readers (and our writer) do not.
    """
    try:
        json.dumps(value, allow_nan=False)  # the common case, checked at C speed
        return value, 0
    except ValueError:
        pass
    if isinstance(value, float) and not math.isfinite(value):
        return None, 1
    if isinstance(value, dict):
        pairs = [(k, json_safe(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, list):
        items = [json_safe(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0


def read_json(path: Path) -> Any:
    """Parse a JSON file; `InputError` names the file and the line/column of a syntax error."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("file not found", path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a folder, not a file", path) from exc
    except PermissionError as exc:
        raise InputError("cannot read: permission denied", path) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", path) from exc
    if not text.strip():
        raise InputError("the file is empty (expected JSON)", path)
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", path
        ) from exc
    except RecursionError as exc:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path) from exc
    return data
